"""Detector for remake targets: the content detector, TransNetV2 and black pauses together.

Alone, each misses transitions the other finds (on the Sintel trailer they agree on half their
cuts): TransNetV2 catches flashes, dissolves and cuts between near-black title cards, and puts
gradual transitions at their start; the content detector catches fades but cuts on fast motion
and calls a dim close-up or a title card black. A target is short (TransNetV2 runs at about
70 frames/s on 2 AVX2 cores, in OpenVINO), so it can afford both, plus a black detector that
asks what a viewer can see (`shots.black`). Archives keep `content`: TransNetV2 is slow on
hours of footage.

Cuts, strongest claim first; a weaker one closer than the minimum shot length to an accepted
one is dropped:
  1. content cuts that TransNetV2 backs with at least a weak signal (a lone content cut is
     usually fast motion), at the content detector's frame, exact on hard cuts;
  2. TransNetV2 transitions, except those within 0.75 s of a black pause: those are the
     fade into or out of it, and the pause places the cut better;
  3. black pauses (runs of frames with nothing visible): a long one becomes its own shot (cut
     into it and out of it, so the remake keeps it black); a short one gets a cut in its middle;
  4. slow transitions that only TransNetV2's second head sees (`gradual`), not near black either.
     A long dissolve or a fade under a title spreads the single-frame head's signal over a
     second or more, so it never crosses the threshold (Sintel's dissolve into the desert
     peaks at 0.29, the desert fading out under the logo at 0.24), and one archive shot was
     cut over both sides of it. The many-hot head, trained to mark every frame inside a
     transition, holds above 0.5 for 18 and 37 frames there.
"""

from __future__ import annotations

import cv2
import numpy as np

from rereel.shots.black import is_black
from rereel.shots.content import ContentFadeDetector
from rereel.shots.detector import ShotDetector, register_detector
from rereel.shots.transnet import TransNetV2Detector, transitions

SUPPORT = 0.2  # TransNetV2 probability near a content cut that confirms it
# TransNetV2 marks a fade to or from black 9-15 frames before or after the black (Sintel, BBB);
# a cut 23 frames after one ('coming soon' to the credits) is a cut of its own.
FADE_S = 0.75
INSIDE = 0.5  # many-hot probability that a frame lies inside a transition
# A transition's many-hot run at least this long is a gradual one: hard cuts and flashes give
# runs of 1-3 frames (Sintel, BBB), and the single-frame head finds those.
GRADUAL_S = 0.25


def gradual(inside: np.ndarray, single: np.ndarray, min_frames: int) -> list[int]:
    """A cut per run of at least `min_frames` frames that TransNetV2's many-hot head puts inside
    a transition (`inside` >= INSIDE): the frame after the single-frame head's peak in the run,
    where the two pictures weigh the same in a dissolve. A run from the first frame is the film
    fading in, not a cut; one to the last frame, the film fading out."""
    cuts = []
    for a, b in true_runs(inside >= INSIDE):
        if b - a + 1 >= min_frames and a > 0 and b < len(inside) - 1:
            cuts.append(a + int(np.argmax(single[a : b + 1])) + 1)
    return cuts


def true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frame of each run of True."""
    runs, i = [], 0
    while i < len(flags):
        if flags[i]:
            j = i
            while j < len(flags) and flags[j]:
                j += 1
            runs.append((i, j - 1))
            i = j
        else:
            i += 1
    return runs


@register_detector("target")
class TargetDetector(ShotDetector):
    frame_size = (256, 144)

    @classmethod
    def prepare(cls, backend: str | None = None) -> None:
        TransNetV2Detector.prepare(backend)

    def __init__(self, fps: float, min_shot_s: float = 0.5):
        super().__init__(fps)
        self.min_len = max(2, round(min_shot_s * self.fps))
        self.content = ContentFadeDetector(fps, min_shot_s=min_shot_s)
        self.transnet = TransNetV2Detector(fps, min_shot_s=min_shot_s)
        self._black: list[bool] = []  # per frame: nothing visible (shots.black)

    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        self.content.push(index, time, rgb)
        w, h = self.transnet.frame_size
        self.transnet.push(index, time, cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA))
        self._black.append(is_black(rgb))

    def finish(self) -> list[int]:
        n = len(self._black)
        if n == 0:
            return []
        # What each would say alone (kept for comparison: tests, reports).
        self.alone = {"content": self.content.finish(), "transnetv2": self.transnet.finish()}
        preds = self.transnet.predictions
        runs = true_runs(np.array(self._black, dtype=bool))

        content = [c for c in self.content.hard_cuts if preds[max(0, c - 3) : c + 2].max(initial=0) >= SUPPORT]
        near = round(FADE_S * self.fps)
        near_black = lambda c: any(a - near <= c <= b + 1 + near for a, b in runs)  # noqa: E731
        network = [c for c in transitions(preds, self.transnet.threshold) if not near_black(c)]
        black = []
        for a, b in runs:
            if a == 0:
                black.append(b + 1)  # the film opens on black: that is a shot of its own
            elif b == n - 1:
                black.append(a)  # it ends on black
            elif b - a + 1 >= self.min_len:
                black += [a, b + 1]
            else:
                black.append((a + b + 1) // 2)

        slow = [c for c in gradual(self.transnet.inside, preds, max(2, round(GRADUAL_S * self.fps))) if not near_black(c)]
        accepted: list[int] = []
        for c in content + network + black + slow:  # strongest claim first
            if 0 < c < n and all(abs(c - k) >= self.min_len for k in accepted):
                accepted.append(c)
        return sorted(accepted)
