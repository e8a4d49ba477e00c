"""Contact sheets: shot thumbnails laid out in a labelled grid, as a PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from rereel.explore.footage import Footage
from rereel.library import Catalog
from rereel.outputs import save_image

CELL = (320, 180)  # 16:9 cells; thumbnails of other shapes are centre-cropped to fill them
LABEL_HEIGHT = 22
GAP = 4
BACKGROUND = (18, 18, 18)


def label_font(size: int = 14) -> ImageFont.ImageFont:
    """Pillow's bundled font (no system font is assumed)."""
    return ImageFont.load_default(size=size)


def thumbnail_image(catalog: Catalog, footage: Footage) -> Image.Image:
    data = catalog.thumbnail(footage.shot_id) if footage.shot_id is not None else None
    if not data:
        return Image.new("RGB", CELL, (0, 0, 0))
    return Image.open(io.BytesIO(data)).convert("RGB")


def fit_label(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text` shortened with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(images: list[Image.Image], labels: list[str], columns: int, title: str | None = None) -> Image.Image:
    """Images cover-fitted into CELL-sized cells, `columns` across, each with its label under it."""
    rows = max(1, math.ceil(len(images) / columns))
    cw, ch = CELL
    title_height = 32 if title else 0
    width = columns * cw + (columns + 1) * GAP
    height = title_height + rows * (ch + LABEL_HEIGHT) + (rows + 1) * GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = label_font(14)
    if title:
        draw.text((GAP + 2, 6), fit_label(draw, title, label_font(18), width - 2 * GAP), font=label_font(18), fill=(235, 235, 235))
    for i, (image, label) in enumerate(zip(images, labels)):
        r, c = divmod(i, columns)
        x = GAP + c * (cw + GAP)
        y = title_height + GAP + r * (ch + LABEL_HEIGHT + GAP)
        sheet.paste(ImageOps.fit(image, CELL, Image.Resampling.LANCZOS), (x, y))
        draw.text((x + 3, y + ch + 3), fit_label(draw, label, font, cw - 6), font=font, fill=(220, 220, 220))
    return sheet


def shot_sheet(catalog: Catalog, shots: list[Footage], labels: list[str], columns: int, title: str | None = None) -> Image.Image:
    return contact_sheet([thumbnail_image(catalog, s) for s in shots], labels, columns, title)


def save_png(image: Image.Image, path: Path) -> Path:
    """Write atomically: a half-written PNG never sits under the final name."""
    return save_image(image, path, optimize=True)
