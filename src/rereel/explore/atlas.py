"""Draw a 2-D map of shots as thumbnails, each framed in its source video's colour."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from rereel.explore.sheets import fit_label, label_font

BACKGROUND = (14, 14, 14)
MARGIN = 40
LEGEND_ROW = 20


def video_colours(count: int) -> list[tuple[int, int, int]]:
    """Distinct, bright colours: golden-ratio steps round the hue circle."""
    out = []
    for i in range(count):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 1.0)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def draw_map(positions: np.ndarray, thumbnails: list[Image.Image], video_index: list[int], video_names: list[str],
             *, thumb_width: int = 112, title: str = "") -> Image.Image:
    """Thumbnails centred on their positions; the canvas grows with the number of shots."""
    n = len(positions)
    thumb_height = round(thumb_width * 9 / 16)
    # About four thumbnails' area per shot keeps overlaps to the dense spots, where they mean something.
    side = int(max(1200, min(6000, math.sqrt(n * 4 * thumb_width * thumb_height))))
    pos = positions - positions.min(0)
    pos = pos / np.maximum(pos.max(0), 1e-9)
    span_w, span_h = side - 2 * MARGIN - thumb_width, side - 2 * MARGIN - thumb_height
    columns = max(1, (side - 2 * MARGIN) // 260)
    legend_height = LEGEND_ROW * math.ceil(len(video_names) / columns) + 16
    canvas = Image.new("RGB", (side, side + legend_height + 30), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = label_font(14)
    if title:
        draw.text((MARGIN, 8), title, font=label_font(18), fill=(230, 230, 230))
    colours = video_colours(len(video_names))
    # Draw from the outside in, so the middle of a crowded region (most typical shots) stays on top.
    order = np.argsort(-np.linalg.norm(pos - 0.5, axis=1))
    for i in order:
        x = int(MARGIN + pos[i, 0] * span_w)
        y = int(30 + MARGIN + pos[i, 1] * span_h)
        thumb = ImageOps.fit(thumbnails[i], (thumb_width, thumb_height), Image.Resampling.LANCZOS)
        draw.rectangle([x - 3, y - 3, x + thumb_width + 2, y + thumb_height + 2], fill=colours[video_index[i]])
        canvas.paste(thumb, (x, y))
    y0 = side + 30
    for j, name in enumerate(video_names):
        r, c = divmod(j, columns)
        x, y = MARGIN + c * 260, y0 + r * LEGEND_ROW
        draw.rectangle([x, y + 3, x + 12, y + 15], fill=colours[j])
        draw.text((x + 18, y + 1), fit_label(draw, name, font, 236), font=font, fill=(210, 210, 210))
    return canvas
