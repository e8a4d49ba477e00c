"""What a viewer cannot see: a frame is black when (almost) none of its pixels is visible.

A mean of luma calls a dim close-up (Sintel's face by firelight, mean 5-13 of 255) black and a
title card of small white text on black (mean 1) black too. A high percentile does not: it
asks whether the brightest half-percent of the picture, enough for a line of small text, rises
above what the eye makes out on a dark screen.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

VISIBLE_PERCENTILE = 99.5
VISIBLE_LUMA = 12.0  # 0-255; below it a picture on a dark screen reads as black (judged on the trailers by eye)


def visible_level(rgb: np.ndarray) -> float:
    """The luma (Rec. 601, 0-255) that the brightest 0.5% of the pixels reach."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return float(np.percentile(y, VISIBLE_PERCENTILE))


def is_black(rgb: np.ndarray) -> bool:
    """`visible_level(rgb) < VISIBLE_LUMA`, decided for most frames by counting (see below)."""
    counted = _black_by_count(rgb)
    return visible_level(rgb) < VISIBLE_LUMA if counted is None else counted


def _black_by_count(rgb: np.ndarray) -> bool | None:
    """Whether the frame is black, from how many of its pixels are lit; None when too close to
    call. The level lies between two neighbouring pixels of the sorted luma, so it is below
    VISIBLE_LUMA when fewer pixels than those above the upper one reach it, and not when at least
    those above the lower one do. OpenCV's 8-bit grey (Rec. 601, rounded: within 0.52 of the
    exact luma) counts them, at a twelfth of the cost of the percentile a target's shot detector
    paid for every frame; only a frame with about as many pixels between 11 and 13 as make the
    difference needs the exact level."""
    n = rgb.shape[0] * rgb.shape[1] if rgb.ndim == 3 else 0
    if n < 64 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:  # a thumbnail of a thumbnail: exactly
        return None
    # The sorted luma's lower neighbour of the level, give or take one: NumPy rounds the
    # position its own way, so each test below allows for the neighbour on either side.
    k = int(VISIBLE_PERCENTILE / 100 * (n - 1))
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    surely_lit = np.count_nonzero(grey >= VISIBLE_LUMA + 1)  # luma >= 12.48
    maybe_lit = np.count_nonzero(grey >= VISIBLE_LUMA - 1)  # all with luma >= 12
    if maybe_lit <= n - k - 3:  # the upper neighbour is below 12, and so is the level
        return True
    if surely_lit >= n - k + 1:  # the lower neighbour reaches 12, and so does the level
        return False
    return None


def jpeg_is_black(data: bytes) -> bool:
    """`is_black` for a JPEG (a shot's thumbnail)."""
    from PIL import Image

    return is_black(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
