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


@register_detector("content")
class ContentFadeDetector(ShotDetector):
    frame_size = (256, 144)

    def __init__(self, fps: float, threshold: float = 27.0, fade_threshold: int = 12, min_shot_s: float = 0.5):
        super().__init__(fps)
        self.min_len = max(2, round(min_shot_s * self.fps))
        self._colour = ContentDetector(threshold=threshold, min_scene_len=self.min_len)
        self._luma = ContentDetector(threshold=threshold, min_scene_len=self.min_len, luma_only=True)
        # add_final_scene: a film that fades out and stays dark (logo, credits) still gets that cut.
        self._fades = ThresholdDetector(threshold=fade_threshold, min_scene_len=self.min_len, add_final_scene=True)
        self._cuts: dict[str, list[int]] = {"colour": [], "luma": [], "fades": []}
        self._lit = self._mono = 0
        self._last: FrameTimecode | None = None
        self.hard_cuts: list[int] = []  # the content cuts alone, without the fades (after `finish`)
        self._tiny: list[np.ndarray] = []  # 16x9 grey per frame (144 bytes): to recognise loops

    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        tc = FrameTimecode(index, fps=self.fps)
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # PySceneDetect works on OpenCV's BGR
        for key, det in (("colour", self._colour), ("luma", self._luma), ("fades", self._fades)):
            self._cuts[key] += [c.frame_num for c in det.process_frame(tc, bgr)]
        self._tiny.append(cv2.resize(rgb.mean(axis=2, dtype=np.float32), (16, 9), interpolation=cv2.INTER_AREA))
        if index % 4 == 0 and rgb.mean() > 24:  # a sample of lit frames is enough to judge
            self._lit += 1
            self._mono += float((rgb.max(-1).astype(np.int16) - rgb.min(-1)).mean()) < MONO_SATURATION
        self._last = tc

    @property
    def monochrome(self) -> bool:
        return self._lit > 0 and self._mono >= MONO_SHARE * self._lit

    def finish(self) -> list[int]:
        if self._last is None:
            return []
        for key, det in (("colour", self._colour), ("luma", self._luma), ("fades", self._fades)):
            self._cuts[key] += [c.frame_num for c in det.post_process(self._last)]
        self.hard_cuts = drop_loops(merge_cuts(self._cuts["luma" if self.monochrome else "colour"], self.min_len), self._tiny)
        return merge_cuts(self.hard_cuts + self._cuts["fades"], self.min_len)


def drop_loops(cuts: list[int], tiny: list[np.ndarray]) -> list[int]:
    """Cuts less those that recur: same frame before and after as another cut (a loop point)."""
    cuts = [c for c in cuts if 0 < c < len(tiny)]
    if len(cuts) < 2:
        return cuts
    after = np.stack([tiny[c] for c in cuts]).reshape(len(cuts), -1)
    before = np.stack([tiny[c - 1] for c in cuts]).reshape(len(cuts), -1)
    loop = set()
    for i in range(len(cuts)):
        same = (np.abs(after - after[i]).mean(1) < LOOP_MATCH) & (np.abs(before - before[i]).mean(1) < LOOP_MATCH)
        same[i] = False
        if same.any():
            loop.add(cuts[i])
    return [c for c in cuts if c not in loop]
