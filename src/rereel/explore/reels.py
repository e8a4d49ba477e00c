"""Moving outputs: a 3x3 grid video where nine shots play at once, and a compilation cut shot after shot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rereel.explore.footage import Footage, decode_footage, footage_frames
from rereel.media import VideoWriter, probe
from rereel.media.prefetch import prefetch

GRID_CELL = (320, 180)
GRID_GAP = 4
GRID_RATE = 24.0
GRID_MAX_SECONDS = 6.0  # nine shots held in memory at cell size: 6 s x 24 fps x 9 x 173 KB = 0.9 GB at most


def write_grid_video(shots: list[Footage], path: Path, *, columns: int = 3, cell: tuple[int, int] = GRID_CELL,
                     rate: float = GRID_RATE, max_seconds: float = GRID_MAX_SECONDS,
                     on_shot: Callable[[int], None] | None = None) -> Path:
    """All shots at once in a grid, as long as the longest (capped at `max_seconds`); shorter ones loop.

    Each shot is decoded once at cell size and its frames kept, so looping costs nothing.
    """
    cw, ch = cell
    clips = []
    for i, shot in enumerate(shots):
        clips.append(decode_footage(shot, rate, cw, ch, "cover", max_seconds))
        if on_shot is not None:
            on_shot(i + 1)
    rows = -(-len(shots) // columns)
    width = columns * cw + (columns + 1) * GRID_GAP
    height = rows * ch + (rows + 1) * GRID_GAP
    width, height = width + width % 2, height + height % 2
    length = max(len(c) for c in clips)
    canvas = np.full((height, width, 3), 18, np.uint8)
    with VideoWriter(path, width, height, rate, crf=23) as writer:
        for t in range(length):
            for i, clip in enumerate(clips):
                r, c = divmod(i, columns)
                x, y = GRID_GAP + c * (cw + GRID_GAP), GRID_GAP + r * (ch + GRID_GAP)
                canvas[y : y + ch, x : x + cw] = clip[t % len(clip)]
            writer.write(canvas)
    return path


def compilation_size(paths: list[Path], width: int) -> tuple[int, int]:
    """An output size for cutting these videos together: `width` wide, at their median aspect ratio."""
    aspects = []
    for p in paths:
        w, h = probe(p).display_size
        aspects.append(w / h)
    aspect = float(np.median(aspects)) if aspects else 16 / 9
    height = max(2, round(width / aspect / 2) * 2)
    return width - width % 2, height


def write_compilation(pieces: list[Footage], path: Path, *, width: int, height: int, rate: float, fit: str,
                      on_piece: Callable[[int], None] | None = None) -> Path:
    """The pieces cut one after another at a common size and rate, silent. The frames are
    decoded and fitted in a thread a few ahead of the encoder (media/prefetch.py)."""
    with VideoWriter(path, width, height, rate) as writer:

        def frames():  # (piece, frame), and (piece, None) once a piece is done
            for i, piece in enumerate(pieces):
                yield from ((i, frame) for frame in footage_frames(piece, rate, writer.width, writer.height, fit))
                yield i, None

        ahead = prefetch(frames(), size=8)
        try:
            for i, frame in ahead:
                if frame is not None:
                    writer.write(frame)
                elif on_piece is not None:
                    on_piece(i + 1)
        finally:
            ahead.close()
    return path
