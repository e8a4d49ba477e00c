"""A remake's target shot beside the archive piece chosen for it: which footage, and its layout.

One layout for every pair the tools show (`rereel gif --pair`, the editor's pair preview, the
mirror's reaction GIF): two sides of one size, the target's shape, side by side; the target is
shown whole (letterboxed), the archive fills its side (cover).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import opentimelineio as otio

from rereel.errors import RereelError
from rereel.explore.footage import Footage, decode_footage, footage_frames
from rereel.media import probe
from rereel.media.image import even
from rereel.render import check_unchanged
from rereel.timeline import KEY, media_path, read_timeline, shot_items, shows_file, speed

TARGET_FIT = "letterbox"  # the target whole
MATCH_FIT = "cover"  # the archive piece fills its side


def side_size(path: Path, width: int) -> tuple[int, int]:
    """One side's size: `width` wide, the video's own (display) shape, both even."""
    sw, sh = probe(path).display_size
    return even(width), even(width * sh / sw)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """[n, h, w, 3] frames beside [m, h, w', 3] frames, as long as the shorter."""
    n = min(len(left), len(right))
    return np.concatenate([left[:n], right[:n]], axis=2)


def pair_frames(target: Footage, match: Footage, rate: float, width: int, seconds: float) -> np.ndarray:
    """The pair's frames [n, h, 2w, 3]: both sides cover the same seconds, each `width` wide."""
    w, h = side_size(target.path, width)
    return side_by_side(decode_footage(target, rate, w, h, TARGET_FIT, seconds),
                        decode_footage(match, rate, w, h, MATCH_FIT, seconds))


def pair_stream(target: Footage, match: Footage | None, rate: float, w: int, h: int,
                seconds: float) -> Iterator[np.ndarray]:
    """The pair's frames one at a time, as long as the target; the archive side black where it ends
    (or throughout, with no match)."""
    right = footage_frames(match, rate, w, h, MATCH_FIT, seconds) if match is not None else None
    for frame in footage_frames(target, rate, w, h, TARGET_FIT, seconds):
        if right is not None:
            frame = np.concatenate([frame, next(right, np.zeros_like(frame))], axis=1)
        yield frame


def timeline_pair(tl: otio.schema.Timeline, shot: int) -> tuple[Footage, Footage | None] | None:
    """(target shot, its archive piece or None where the remake is black) of a remake timeline;
    None when the timeline has no such target shot. The archive piece is the clip's own range:
    it ends on its archive shot's cut (a short one is held in the remake), never running on."""
    target_path = Path(tl.metadata[KEY]["target"]["path"])
    for item in shot_items(tl):
        info = item.metadata.get(KEY, {})
        if info.get("target_shot") != shot:
            continue
        target = Footage(target_path, float(info["target_start"]), float(info["target_end"]), target_path.name)
        if not shows_file(item):
            check_unchanged(tl, {str(target_path)})
            return target, None
        archive = Path(media_path(item.media_reference))
        check_unchanged(tl, {str(target_path), str(archive)})  # a file replaced since: not the pair that was chosen
        start = item.source_range.start_time.to_seconds()
        rate = item.source_range.duration.rate
        shown = speed(item) * item.source_range.duration.to_seconds()  # the media it shows: at its speed,
        end = start + (shown if shown > 0 else 1 / rate)  # or one frame held
        return target, Footage(archive, start, end, archive.name, info.get("shot_id"))
    return None


def pair_footage(spec: str) -> tuple[Footage, Footage]:
    """'remake.otio:3' -> (target shot 3, its archive match)."""
    path_text, sep, shot_text = spec.rpartition(":")
    if not sep or not shot_text.strip().isdigit():
        raise RereelError(f"--pair {spec!r}: write TIMELINE.otio:SHOT, e.g. remake.otio:3")
    shot = int(shot_text)
    tl = read_timeline(Path(path_text))
    pair = timeline_pair(tl, shot)
    if pair is None:
        known = ", ".join(str(s) for s in (i.metadata.get(KEY, {}).get("target_shot") for i in shot_items(tl))
                          if s is not None)
        raise RereelError(f"{path_text}: no target shot {shot} (the timeline has shots {known})")
    if pair[1] is None:
        raise RereelError(f"{path_text}: target shot {shot} is black in the remake; it has no archive match to pair")
    return pair
