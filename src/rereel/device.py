"""Where networks run: CUDA, then Apple's MPS, then the CPU with all its cores."""

from __future__ import annotations

import os
from pathlib import Path


def best_device(prefer: str | None = None) -> str:
    """'cuda', 'mps' or 'cpu'; `prefer` (or $REREEL_DEVICE) overrides the choice."""
    import torch

    prefer = prefer or os.environ.get("REREEL_DEVICE")
    if prefer:
        return prefer
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def onnx_cpu_session(path: Path):
    """An ONNX Runtime session on the CPU, on all our cores, whose idle workers sleep.

    Sleeping, not spinning: spinning buys nothing for batches (67 vs 61-69 img/s, batch 32,
    2 cores) but steals a core from whatever runs beside a single-frame caller: the webcam
    mirror's frame took 57 ms p50 spinning against 25 ms not, with one busy process beside it
    (16-17 ms either way when idle). The encoder and the learning-to-see live path share it.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cpu_threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cache_dir() -> Path:
    """Derived artefacts (ONNX exports); never downloads, only what is built locally."""
    root = os.environ.get("REREEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rereel"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
