"""Picture helpers every layer shares: still-image file types, even sizes, cover geometry."""

from __future__ import annotations

import numpy as np

IMAGE_EXTENSIONS = frozenset(".jpg .jpeg .png .webp .bmp .tif .tiff".split())


def even(x: float) -> int:
    """`x` rounded to an even whole number of pixels, at least 2 (what H.264's 4:2:0 wants)."""
    return max(2, int(round(x / 2)) * 2)


def cover_size(width: int, height: int, source_width: float, source_height: float) -> tuple[int, int]:
    """The size a source picture is scaled to, aspect kept, so that it covers width x height."""
    scale = max(width / source_width, height / source_height)
    return max(width, round(source_width * scale)), max(height, round(source_height * scale))


def centre_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centred width x height window of an [H, W, ...] array at least that large (a view)."""
    x, y = (image.shape[1] - width) // 2, (image.shape[0] - height) // 2
    return image[y : y + height, x : x + width]
