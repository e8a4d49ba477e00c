"""How alike a target shot and an archive shot are, followed through time.

Both shots are sampled several times a second. For each placement (offset) of the target shot
inside a longer archive shot, each target frame is paired with the archive frame at the same
relative time, and the pair's similarity is a blend of

  - semantics: cosine of the encoder's pooled features (what is in the frame),
  - composition: mean cosine of the 3x3 grid cells (where it is),
  - colour: affinity of the colour and tone signatures.

The shot score is the mean over the target's frames at the best offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_OFFSETS = 64  # placements tried inside a long archive shot
# Shot boundaries found in two encodes of one film differ by a frame or two; holding the last
# frame that long is invisible, so such a segment still counts as long enough.
SHORT_TOLERANCE_S = 0.1


@dataclass(frozen=True)
class Weights:
    semantic: float = 0.6
    composition: float = 0.25
    colour: float = 0.15

    def normalised(self) -> "Weights":
        total = self.semantic + self.composition + self.colour
        if total <= 0:
            raise ValueError("match weights must not all be zero")
        return Weights(self.semantic / total, self.composition / total, self.colour / total)


@dataclass(frozen=True)
class Placement:
    score: float  # blended similarity at the best offset, about [0, 1]
    start: float  # archive seconds where the used segment begins
    end: float  # start + the target shot's duration (or the archive shot's end, if shorter)
    long_enough: bool
    semantic: float
    composition: float
    colour: float


def frame_similarity(target: dict, candidate: dict, w: Weights) -> tuple[np.ndarray, ...]:
    """[T, C] matrices of semantic, composition and colour similarity between frame sets."""
    sem = target["embedding"] @ candidate["embedding"].T
    comp = target["grid"].astype(np.float32) @ candidate["grid"].astype(np.float32).T
    col = target["colour"] @ candidate["colour"].T
    return sem, comp, col


def place(target: dict, t_start: float, t_end: float, candidate: dict, c_start: float, c_end: float,
          w: Weights, step: float = 0.25) -> Placement:
    """Best placement of the target shot [t_start, t_end) inside the archive shot [c_start, c_end)."""
    w = w.normalised()
    sem, comp, col = frame_similarity(target, candidate, w)
    blend = w.semantic * sem + w.composition * comp + w.colour * col
    duration = t_end - t_start
    rel = target["time"] - t_start  # target frame times from the shot's start
    c_times = candidate["time"]
    room = (c_end - c_start) - duration
    long_enough = room >= -SHORT_TOLERANCE_S
    if long_enough:
        n = min(MAX_OFFSETS, int(room / step) + 1)
        offsets = c_start + np.linspace(0.0, max(room, 0.0), n)
    else:
        offsets = np.array([c_start])
    at = offsets[:, None] + rel[None, :]  # [O, T] archive times to look at
    idx = np.clip(np.searchsorted(c_times, at, side="right") - 1, 0, len(c_times) - 1)  # frame shown then
    rows = np.arange(len(rel))[None, :]
    scores = blend[rows, idx].mean(axis=1)
    best = int(np.argmax(scores))
    i = idx[best]
    start = float(offsets[best])
    return Placement(
        score=float(scores[best]),
        start=start,
        end=min(start + duration, c_end),
        long_enough=bool(long_enough),
        semantic=float(sem[rows[0], i].mean()),
        composition=float(comp[rows[0], i].mean()),
        colour=float(col[rows[0], i].mean()),
    )
