"""Shots as footage: where a catalog shot lives, and its frames decoded at a chosen size and rate."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rereel.errors import MediaError, RereelError
from rereel.library import Catalog
from rereel.media import VIDEO_EXTENSIONS, probe
from rereel.media.probe import still_reason
from rereel.render import Segment, archive_frames

SHOT_ID = re.compile(r"^(?:shot:|#)\s*(\d+)$", re.IGNORECASE)
# clip.mp4@12.5-15, clip.mp4@1:02-1:05.5, clip.mp4@12.5- (to the end), clip.mp4@-3 (from the start)
TIME_RANGE = re.compile(r"^(?P<path>.+)@(?P<start>[0-9:.]*)-(?P<end>[0-9:.]*)$")
# A number that is no shot id (negative, signed, a fraction) after 'shot:' or '#': '#80s neon'
# and '#1 intro.mp4' stay words and names.
NOT_AN_ID = re.compile(r"^(?:shot:|#)\s*[-+]?(?:\d+\.?\d*|\.\d+)$", re.IGNORECASE)
RANGE_FORMS = "12.5-15, 1:02-1:05.5, 12.5- (to the end) or -3 (from the start)"


@dataclass(frozen=True)
class Footage:
    """A stretch of a video file: a library shot, or a range a user named."""

    path: Path
    start: float
    end: float
    name: str
    shot_id: int | None = None
    video_id: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        shot = f"#{self.shot_id} " if self.shot_id is not None else ""
        return f"{shot}{self.name} {self.start:.1f}-{self.end:.1f}s"


MAX_ROW_ID = 2**63 - 1  # SQLite's integers: a larger id would overflow the query, not miss


def parse_shot_id(text: str) -> int | None:
    m = SHOT_ID.match(text.strip())
    if not m:
        # A mistyped id ('shot:-1', '#4.5') is refused, rather than searched for as words.
        if NOT_AN_ID.match(text.strip()) and not _is_file(text):
            raise RereelError(f"{text.strip()}: a shot id is a whole number, as in shot:42 or #42")
        return None
    if int(m.group(1)) > MAX_ROW_ID:
        raise RereelError(f"{text.strip()}: no shot has an id that large")
    return int(m.group(1))


def parse_seconds(text: str) -> float:
    """'12.5', '1:02.5' or '1:02:03' to seconds (finite, not negative)."""
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        parts = [math.nan]
    value = 0.0
    for part in parts:
        value = value * 60 + part
    # float() also takes 'inf', 'nan', '-5' and '1e999' (inf): none of them is a time in a video.
    if not (math.isfinite(value) and all(p >= 0 for p in parts)):
        raise RereelError(f"{text!r} is not a time (use seconds, or m:ss)")
    return value


def parse_time_range(text: str) -> tuple[Path, float, float | None] | None:
    """('clip.mp4', 12.5, 15.0) for 'clip.mp4@12.5-15'; None when `text` is not a range."""
    m = TIME_RANGE.match(text)
    if not m:
        path, at, after = text.rpartition("@")
        # A video file before the '@' and something else after it: a range mistyped, not words.
        if at and path and "/" not in after and Path(path).suffix.lower() in VIDEO_EXTENSIONS and not _is_file(text):
            raise RereelError(f"{text}: after the @ comes a time range, as in {RANGE_FORMS}; got {after!r}")
        return None
    start = parse_seconds(m["start"]) if m["start"] else 0.0
    end = parse_seconds(m["end"]) if m["end"] else None
    if end is not None and end <= start:
        raise RereelError(f"{text}: the range ends before it starts")
    return Path(m["path"]), start, end


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for the OS, a NUL byte: no file
        return False


def shot_footage(catalog: Catalog, shot_id: int) -> Footage:
    row = catalog.shot(shot_id)
    if row is None:
        total = catalog.stats()["shots"]
        raise RereelError(f"no shot #{shot_id} in the library ({total} shots; `rereel info` lists the videos)")
    return Footage(Path(row["path"]), float(row["start"]), float(row["end"]), row["name"], row["id"], row["video_id"])


def range_footage(path: Path, start: float, end: float | None) -> Footage:
    """A user's time range, checked against the file's length (an open end runs to the end)."""
    info = probe(path)
    if start >= info.duration:
        reason = still_reason(info)
        if reason:  # a PNG probes as a video of 0 s: say what it is, not that it is too short
            raise MediaError(path, reason)
        raise MediaError(path, f"the range starts at {start:.2f} s but the video lasts {info.duration:.2f} s")
    end = info.duration if end is None else min(end, info.duration)
    return Footage(path, start, end, path.name)


def resolve_footage(text: str, catalog: Catalog | None) -> Footage:
    """A shot id ('shot:42', '#42'), a range ('clip.mp4@12-15') or a whole video file."""
    if "\0" in text:  # no file name holds one (the OS calls would raise ValueError)
        raise RereelError(f"{text!r}: a file name cannot hold a NUL byte")
    shot_id = parse_shot_id(text)
    if shot_id is not None:
        if catalog is None:
            raise RereelError(f"{text} is a shot id: it needs a library (--library)")
        return shot_footage(catalog, shot_id)
    parsed = parse_time_range(text)
    if parsed is not None:
        return range_footage(*parsed)
    return range_footage(Path(text), 0.0, None)


def footage_frames(footage: Footage, rate: float, width: int, height: int, fit: str = "cover",
                   max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """The footage's frames at `rate`, scaled to width x height, streamed from one seek."""
    seconds = footage.duration if max_seconds is None else min(footage.duration, max_seconds)
    count = max(1, round(seconds * rate))
    yield from archive_frames(Segment(count, str(footage.path), footage.start), rate, width, height, fit)


def decode_footage(footage: Footage, rate: float, width: int, height: int, fit: str = "cover",
                   max_seconds: float | None = None) -> np.ndarray:
    """All of `footage_frames` in one array [n, height, width, 3] uint8, for footage shown more than once.

    Kept in memory at the output size, which is why callers cap the length (`max_seconds`).
    """
    return np.stack(list(footage_frames(footage, rate, width, height, fit, max_seconds)))
