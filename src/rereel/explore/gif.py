"""Reaction GIFs: a shot or range, an optional meme caption, one shared palette, a size cap.

The caption is set in Fjalla One (SIL Open Font Licence), a condensed bold display face in
the spirit of Impact, shipped as a TTF inside the PyPI package `font-fjallaone`: no system
font is assumed. White letters, black outline, centred at the bottom, as the genre expects.

GIF has 256 colours per frame. One palette is built from a sample of the frames (captions
included, so white and black are exact) and used for every frame: a per-frame palette makes
colours flicker and defeats the inter-frame compression Pillow does (it stores only the
changed rectangle of each frame when the palette is shared).
"""

from __future__ import annotations

import functools
import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rereel.errors import RereelError
from rereel.outputs import write_bytes

# Each attempt: (frame rate, width as a fraction of the asked width, colours, dither).
# Cheapest losses first: dithering noise compresses badly, then colours, then fps, then size.
LADDER = [
    (12, 1.0, 256, True), (12, 1.0, 256, False), (12, 1.0, 128, False), (10, 1.0, 128, False),
    (10, 0.85, 128, False), (10, 0.85, 64, False), (8, 0.75, 64, False), (8, 0.65, 48, False),
    (6, 0.55, 32, False), (6, 0.45, 32, False), (5, 0.35, 24, False),
]
MAX_RATE = 12.0


@dataclass
class GifResult:
    path: Path
    bytes: int
    width: int
    height: int
    fps: float
    colours: int
    frames: int


def caption_font(size: int) -> ImageFont.FreeTypeFont:
    try:
        import font_fjallaone
    except ImportError:
        raise RereelError("captions need the packaged font: pip install font-fjallaone") from None
    return ImageFont.truetype(str(font_fjallaone.font_files["FjallaOne"]), size)


MAX_CAPTION = 120  # characters: three lines of a meme; longer text is refused, not set in 10 px type


def caption_text(text: str) -> str:
    """The caption as drawn: upper case (which may lengthen it: ß is SS), spaces collapsed."""
    return " ".join(text.upper().split())


def check_caption(text: str | None) -> None:
    """Refuse a caption longer than MAX_CAPTION as drawn, or with characters the caption font
    lacks (emoji, CJK: they were drawn as empty boxes, without a word): callers check before
    any frame is made."""
    if text is None:
        return
    drawn = caption_text(text)
    if len(drawn) > MAX_CAPTION:
        raise RereelError(f"the caption is {len(drawn)} characters long in capitals; a caption holds at most {MAX_CAPTION}")
    missing = _missing_glyphs(drawn)
    if missing:
        raise RereelError(f"the caption font (Fjalla One, Latin letters) has no {' '.join(missing)}; "
                          "they would show as empty boxes: leave them out of the caption")


def _missing_glyphs(text: str) -> list[str]:
    """The characters of `text` the caption font has no glyph for. Pillow offers no "has glyph":
    such a character is drawn as the font's .notdef box, the same as a code point no font has."""
    font = caption_font(40)
    def box(ch: str) -> tuple:
        mask = font.getmask(ch)
        return mask.size, bytes(mask)

    notdef = box("\U0010fffd")  # a private-use code point: never in a font
    return [ch for ch in dict.fromkeys(text) if not ch.isspace() and box(ch) == notdef]


def draw_caption(image: Image.Image, text: str) -> Image.Image:
    """Meme caption: upper case, white, black outline, bottom centre, wrapped to at most three lines
    (more only where even the smallest type, 10 px, does not fit a long caption in a narrow GIF)."""
    w, h = image.size
    text = caption_text(text)
    draw = ImageDraw.Draw(image)
    size, font, stroke, lines = _caption_layout(w, h, text)
    line_height = int(size * 1.12)
    y = h - int(h * 0.04) - line_height * len(lines)
    for line in lines:
        lw = draw.textlength(line, font=font) + 2 * stroke
        draw.text(((w - lw) / 2 + stroke, y), line, font=font, fill="white", stroke_width=stroke, stroke_fill="black")
        y += line_height
    return image


@functools.lru_cache(maxsize=8)  # once a GIF size, not once a frame: the search measures many wraps
def _caption_layout(w: int, h: int, text: str):
    """(type size, font, stroke, lines): the largest size at which the caption fits in three
    lines across 92% of the width."""
    check_caption(text)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    size = max(10, h // 7)
    while True:
        font = caption_font(size)
        stroke = max(2, size // 10)
        lines = _wrap(draw, text, font, stroke, int(w * 0.92))
        if (lines and len(lines) <= 3) or size <= 10:
            # At the smallest size, a word wider than the picture is broken across lines (it was
            # dropped: no whole-word wrap fits, and the GIF came out without its caption).
            return size, font, stroke, lines or _wrap(draw, text, font, stroke, int(w * 0.92), break_words=True)
        size = int(size * 0.9)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, stroke: int, width: int, break_words: bool = False) -> list[str]:
    for chars in range(max(1, len(text)), 0, -1):
        lines = textwrap.wrap(text, chars, break_long_words=break_words) or [text]
        if all(draw.textlength(line, font=font) + 2 * stroke <= width for line in lines):
            return lines
    return []


def _resample_rate(frames: np.ndarray, rate: float, target: float) -> np.ndarray:
    """Pick frames for a lower rate, by time (the GIF keeps the footage's real speed)."""
    if target >= rate:
        return frames
    count = max(1, int(round(len(frames) * target / rate)))
    picks = np.minimum((np.arange(count) * rate / target).round().astype(int), len(frames) - 1)
    return frames[picks]


def gif_delays(count: int, fps: float) -> list[int]:
    """Each frame's delay in ms, whole hundredths of a second (all a GIF can hold), spread so the
    frames keep their times: 12 fps is 8, 8, 9 cs... A single delay of round(1000 / fps) ms is
    stored as 8 cs (Pillow drops the rest), and the GIF played 4% fast."""
    ends = [round((i + 1) * 100 / fps) for i in range(count)]
    return [10 * (end - start) for start, end in zip([0] + ends[:-1], ends)]


def encode_gif(frames: list[Image.Image], fps: float, colours: int, dither: bool) -> bytes:
    """Frames with one shared adaptive palette, looping forever."""
    # The palette is learned from a mosaic of up to 16 frames spread over the clip.
    step = max(1, len(frames) // 16)
    sample = frames[::step][:16]
    w, h = sample[0].size
    mosaic = Image.new("RGB", (w, h * len(sample)))
    for i, f in enumerate(sample):
        mosaic.paste(f, (0, i * h))
    palette = mosaic.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    quantised = [f.quantize(palette=palette, dither=mode) for f in frames]
    buf = io.BytesIO()
    quantised[0].save(buf, format="GIF", save_all=True, append_images=quantised[1:], loop=0,
                      duration=gif_delays(len(quantised), fps), optimize=False, disposal=1)
    return buf.getvalue()


def make_gif(frames: np.ndarray, rate: float, path: Path, *, width: int, max_bytes: int, caption: str | None = None,
             on_try: Callable[[int, int, float, int, int], None] | None = None) -> GifResult:
    """Write the smallest-loss GIF of `frames` (decoded at `rate`, at least `width` wide) under `max_bytes`."""
    check_caption(caption)
    _, src_h, src_w, _ = frames.shape
    last = None
    for fps, scale, colours, dither in LADDER:
        w = max(32, int(round(width * scale / 2)) * 2)
        h = max(2, int(round(w * src_h / src_w / 2)) * 2)
        picked = _resample_rate(frames, rate, min(fps, rate))
        images = []
        for rgb in picked:
            im = Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS) if (w, h) != (src_w, src_h) else Image.fromarray(rgb)
            images.append(draw_caption(im, caption) if caption else im)
        real_fps = min(fps, rate)
        data = encode_gif(images, real_fps, colours, dither)
        last = (len(data), w, h, real_fps, colours)
        if on_try is not None:
            on_try(len(data), w, h, real_fps, colours)
        if len(data) <= max_bytes:
            write_bytes(path, data)
            return GifResult(path, len(data), w, h, real_fps, colours, len(images))
    size, w, h, fps, colours = last
    raise RereelError(
        f"cannot fit the GIF under {max_bytes / 1e6:.2f} MB: the smallest try ({w}x{h}, {fps:g} fps, {colours} colours) "
        f"is {size / 1e6:.2f} MB; shorten the range or raise --max-mb"
    )
