"""Default detector: hard cuts by content change plus fades through black.

PySceneDetect's ContentDetector finds cuts (HSV + edge change between frames) and its
ThresholdDetector finds fades to and from black, placing the cut in the dark middle. Film
trailers (the Sintel trailer is one) use both, so both run on the same frames.
"""

from __future__ import annotations

import numpy as np
from scenedetect import ContentDetector, ThresholdDetector
from scenedetect.common import FrameTimecode

from rereel.shots.detector import ShotDetector, merge_cuts


class ContentFadeDetector(ShotDetector):
    name = "content"
    frame_size = (256, 144)

    def __init__(self, fps: float, threshold: float = 27.0, fade_threshold: int = 12, min_shot_s: float = 0.5):
        super().__init__(fps)
        self.min_len = max(2, round(min_shot_s * self.fps))
        self._content = ContentDetector(threshold=threshold, min_scene_len=self.min_len)
        self._fades = ThresholdDetector(threshold=fade_threshold, min_scene_len=self.min_len)
        self._cuts: list[int] = []
        self._last: FrameTimecode | None = None

    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        tc = FrameTimecode(index, fps=self.fps)
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # PySceneDetect works on OpenCV's BGR
        for det in (self._content, self._fades):
            self._cuts += [c.frame_num for c in det.process_frame(tc, bgr)]
        self._last = tc

    def finish(self) -> list[int]:
        if self._last is not None:
            for det in (self._content, self._fades):
                self._cuts += [c.frame_num for c in det.post_process(self._last)]
        return merge_cuts(self._cuts, self.min_len)
