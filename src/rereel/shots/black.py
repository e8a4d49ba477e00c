"""What a viewer cannot see: a frame is black when (almost) none of its pixels is visible.

A mean of luma calls a dim close-up (Sintel's face by firelight, mean 5-13 of 255) black and a
title card of small white text on black (mean 1) black too. A high percentile does not: it
asks whether the brightest half-percent of the picture, enough for a line of small text, rises
above what the eye makes out on a dark screen.
"""

from __future__ import annotations

import io

import numpy as np

VISIBLE_PERCENTILE = 99.5
VISIBLE_LUMA = 12.0  # 0-255; below it a picture on a dark screen reads as black (judged on the trailers by eye)


def visible_level(rgb: np.ndarray) -> float:
    """The luma (Rec. 601, 0-255) that the brightest 0.5% of the pixels reach."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return float(np.percentile(y, VISIBLE_PERCENTILE))


def is_black(rgb: np.ndarray) -> bool:
    return visible_level(rgb) < VISIBLE_LUMA


def jpeg_is_black(data: bytes) -> bool:
    """`is_black` for a JPEG (a shot's thumbnail)."""
    from PIL import Image

    return is_black(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
