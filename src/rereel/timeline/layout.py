"""Which timeline frames an archive segment may fill, and where its last frame must be held.

A clip on the remake track is cut in the target's frame rate, but its frames come from an
archive file at its own rate. Output frame j of a clip starting at timeline-rate frame F0 reads
the source at t_j = (F0 + j) / rate. Readers differ in which source frame they show for t_j:
rereel's render and most players show the frame on screen at t_j (floor), MLT rounds to the
nearest source frame. So a frame is used only if both readings land inside the archive shot:

  t_j >= shot start                       (floor cannot fall into the shot before)
  t_j <= shot end - 0.5 / media fps       (nearest cannot round into the shot after)
  t_j <  segment end                      (the placement the matcher chose)

The remaining output frames of the target shot hold the last frame used (a FreezeFrame clip).
Without the archive shot's bounds, the segment's own start and end count as shot bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-6


@dataclass(frozen=True)
class Layout:
    first: int  # source frame (timeline rate) of the first output frame
    frames: int  # output frames read from the segment, at least 1
    hold: int  # output frames that hold the frame at `first + frames - 1`

    @property
    def last(self) -> int:
        return self.first + self.frames - 1


def layout(start: float, end: float, media_fps: float, rate: float, frames: int,
           shot_start: float | None = None, shot_end: float | None = None) -> Layout:
    """Lay `frames` output frames (timeline `rate`) on the archive segment [start, end) seconds."""
    lo = start if shot_start is None else max(shot_start, 0.0)
    hi = end if shot_end is None else shot_end
    first = round(start * rate)
    if first / rate < lo - EPS:
        first = math.ceil(lo * rate - EPS)
    limit = min(end - EPS, hi - 0.5 / media_fps + EPS) if media_fps > 0 else end - EPS
    used = math.floor(limit * rate) - first + 1  # output frames with t_j <= limit
    used = max(1, min(frames, used))
    return Layout(first, used, frames - used)
