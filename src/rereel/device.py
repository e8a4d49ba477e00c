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


def cache_dir() -> Path:
    """Derived artefacts (ONNX exports); never downloads, only what is built locally."""
    root = os.environ.get("REREEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rereel"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
