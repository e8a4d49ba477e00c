"""Default detector: hard cuts by content change plus fades through black.

PySceneDetect's ContentDetector finds cuts (HSV + edge change between frames) and its
ThresholdDetector finds fades to and from black, placing the cut in the dark middle. Film
trailers (the Sintel trailer is one) use both, so both run on the same frames.

Black-and-white film has no hue or saturation to change: ContentDetector's score, an average
over hue, saturation and luma, then reads a third of the real change and misses the cuts
(Nosferatu: 3 found of 9). So a second ContentDetector scores luma alone, and at the end the
footage decides which one to trust: monochrome if nearly all its lit frames are.
"""

from __future__ import annotations

import cv2
import numpy as np
from scenedetect import ContentDetector, ThresholdDetector
from scenedetect.common import FrameTimecode

from rereel.shots.detector import ShotDetector, merge_cuts, register_detector

MONO_SATURATION = 6.0  # mean of max(RGB) - min(RGB), 0-255: below it a frame is monochrome
MONO_SHARE = 0.9  # share of lit frames that must be monochrome for the film to count as such
# A looping animation (Muybridge's photo plates) jumps back to its first plate every cycle: a
# big change, yet the same shot. Two cuts whose frames either side match each other (mean
# difference of 16x9 grey thumbnails, 0-255) are one loop point seen twice, not cuts. Real
# cuts between different shots never repeat that exactly; re-encoded plates do (about 1-2).
LOOP_MATCH = 4.0


class _Scored(ContentDetector):
    """PySceneDetect's ContentDetector fed the frame's score instead of the frame.

    Its own scoring converts each frame to HSV and splits it, once per detector; the colour and
    luma detectors would do that twice, after a BGR copy of the frame, for one frame. `push`
    converts once and scores both with PySceneDetect's formula (`_frame_scores`); the cut
    logic (threshold, flash filter, minimum scene length) stays PySceneDetect's own."""

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img) -> float:
        return frame_img


def _frame_scores(hsv: np.ndarray, last: np.ndarray | None) -> tuple[float, float]:
    """(colour, luma) scores of ContentDetector between two HSV frames: the mean absolute
    difference of hue, saturation and value averaged (default weights 1, 1, 1, 0), and of
    value alone (`luma_only`). 0.0 for the first frame, as PySceneDetect gives."""
    if last is None:
        return 0.0, 0.0
    n = float(hsv.shape[0] * hsv.shape[1])
    # Integer sums of |a - b| per channel, exact in float64: the same numbers as
    # scenedetect's `_mean_pixel_distance`, in one pass over the three planes.
    dh, ds, dl = (v / n for v in cv2.sumElems(cv2.absdiff(hsv, last))[:3])
    w = ContentDetector.DEFAULT_COMPONENT_WEIGHTS
    colour = (dh * w.delta_hue + ds * w.delta_sat + dl * w.delta_lum + 0.0 * w.delta_edges) / sum(abs(x) for x in w)
    return colour, dl


@register_detector("content")
class ContentFadeDetector(ShotDetector):
    frame_size = (256, 144)

    def __init__(self, fps: float, threshold: float = 27.0, fade_threshold: int = 12, min_shot_s: float = 0.5):
        super().__init__(fps)
        self.min_len = max(2, round(min_shot_s * self.fps))
        self.threshold = threshold
        self._colour = _Scored(threshold=threshold, min_scene_len=self.min_len)
        self._luma = _Scored(threshold=threshold, min_scene_len=self.min_len, luma_only=True)
        self._hsv: np.ndarray | None = None  # the previous frame's
        # add_final_scene: a film that fades out and stays dark (logo, credits) still gets that cut.
        self._fades = ThresholdDetector(threshold=fade_threshold, min_scene_len=self.min_len, add_final_scene=True)
        self._cuts: dict[str, list[int]] = {"colour": [], "luma": [], "fades": []}
        self._lit = self._mono = 0
        self._last: FrameTimecode | None = None
        self.hard_cuts: list[int] = []  # the content cuts alone, without the fades (after `finish`)
        # 16x9 grey thumbnails, to recognise loops, of the frames a content cut may fall on and
        # the frames before them. PySceneDetect puts a cut only on a frame whose score reached
        # the threshold, so only those are kept: one for every frame cost 2% of indexing, and
        # 100 MB on a two-hour film.
        self._tiny: dict[int, np.ndarray] = {}
        self._previous: tuple[int, np.ndarray] | None = None  # the frame before this one
        self._frames = 0
        self._rate = FrameTimecode(0, fps=self.fps)  # its rate, worked out from `fps` once, not a frame

    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        tc = FrameTimecode(index, fps=self._rate)
        # RGB2HSV on RGB is PySceneDetect's BGR2HSV on its BGR copy, pixel for pixel.
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
        colour, luma = _frame_scores(hsv, self._hsv)
        self._hsv = hsv
        if max(colour, luma) >= self.threshold:  # a cut may fall here
            self._tiny[index] = _tiny(rgb)
            if self._previous is not None and self._previous[0] not in self._tiny:
                self._tiny[self._previous[0]] = _tiny(self._previous[1])
        self._previous = index, rgb
        self._frames += 1
        self._cuts["colour"] += [c.frame_num for c in self._colour.process_frame(tc, colour)]
        self._cuts["luma"] += [c.frame_num for c in self._luma.process_frame(tc, luma)]
        # ThresholdDetector reads only `numpy.mean` of the frame: handed a one-element array of
        # that mean, worked out once here, it reads the very same number.
        # cv2.mean: per-channel means in one SIMD pass, their average is numpy.mean of the
        # frame (to float rounding) at a tenth of the cost, which was a third of this method.
        mean = sum(cv2.mean(rgb)[:3]) / 3.0
        self._cuts["fades"] += [c.frame_num for c in self._fades.process_frame(tc, np.array([mean]))]
        if index % 4 == 0 and mean > 24:  # a sample of lit frames is enough to judge
            self._lit += 1
            # max(RGB) - min(RGB) per pixel with OpenCV: NumPy's reductions over a 3-long last
            # axis cost more than the rest of the detector.
            r, g, b = cv2.split(rgb)
            spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
            self._mono += float(np.mean(spread)) < MONO_SATURATION
        self._last = tc

    @property
    def monochrome(self) -> bool:
        return self._lit > 0 and self._mono >= MONO_SHARE * self._lit

    def finish(self) -> list[int]:
        if self._last is None:
            return []
        for key, det in (("colour", self._colour), ("luma", self._luma), ("fades", self._fades)):
            self._cuts[key] += [c.frame_num for c in det.post_process(self._last)]
        hard = merge_cuts(self._cuts["luma" if self.monochrome else "colour"], self.min_len)
        self.hard_cuts = drop_loops(hard, self._tiny, self._frames)
        return merge_cuts(self.hard_cuts + self._cuts["fades"], self.min_len)


def _tiny(rgb: np.ndarray) -> np.ndarray:
    """A frame's 16x9 grey thumbnail (LOOP_MATCH's). Area scaling is linear, so scaling the
    three channels then averaging them is the grey average scaled, at a tenth of the cost of
    averaging first. Scaled as uint8 (each cell rounded, within 0.5 of a level of LOOP_MATCH's
    4): a float copy of the whole frame first cost more than the rest."""
    return cv2.resize(rgb, (16, 9), interpolation=cv2.INTER_AREA).astype(np.float32).mean(axis=2)


def drop_loops(cuts: list[int], tiny: dict[int, np.ndarray], frames: int) -> list[int]:
    """Cuts less those that recur: same frame before and after as another cut (a loop point).
    `tiny`: the 16x9 grey thumbnails of the frames at and before each cut, by frame number;
    `frames`: how many there are."""
    cuts = [c for c in cuts if 0 < c < frames]
    known = [c for c in cuts if c in tiny and c - 1 in tiny]  # all of them (see ContentFadeDetector)
    if len(known) < 2:
        return cuts
    after = np.stack([tiny[c] for c in known]).reshape(len(known), -1)
    before = np.stack([tiny[c - 1] for c in known]).reshape(len(known), -1)
    loop = set()
    for i in range(len(known)):
        same = (np.abs(after - after[i]).mean(1) < LOOP_MATCH) & (np.abs(before - before[i]).mean(1) < LOOP_MATCH)
        same[i] = False
        if same.any():
            loop.add(known[i])
    return [c for c in cuts if c not in loop]
