"""Indexing speed against the physical floor: a bare PyAV decode of the same files.

Prints, from one run on this machine:
  - bare decode wall time of every archive video (all frames, no conversion);
  - `rereel index` wall time of the same files into a fresh library;
  - their ratio (how far indexing is above the floor);
  - encoder throughput (images/s, batch 32) on the CPU backend in use, and on CUDA if present.

Usage: python bench/bench_index.py [ARCHIVE_DIR] [--detector content|transnetv2]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bare_decode(files: list[Path]) -> tuple[float, int]:
    frames = 0
    t = time.perf_counter()
    for f in files:
        with av.open(str(f)) as c:
            if not c.streams.video:
                continue
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            for _ in c.decode(s):
                frames += 1
    return time.perf_counter() - t, frames


def encoder_rate(device: str | None, backend: str | None = None, n: int = 256) -> float:
    from rereel.encoders import create_encoder

    enc = create_encoder("effnet-lite0", device=device, backend=backend)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 255, (32, 224, 224, 3), dtype=np.uint8)
    enc.embed(batch)  # warm-up (and ONNX export on first use)
    t = time.perf_counter()
    for _ in range(n // 32):
        enc.embed(batch)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive", nargs="?", default=str(ROOT.parent / "shared" / "media" / "archive"))
    ap.add_argument("--detector", default="content")
    args = ap.parse_args()
    from rereel.media import find_videos

    files = find_videos([Path(args.archive)])
    seconds = sum(float(av.open(str(f)).duration or 0) / 1e6 for f in files)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(files)} files, {seconds:.0f} s of video")

    decode_s, frames = bare_decode(files)
    print(f"bare decode:      {decode_s:7.1f} s  ({frames} frames, {frames / decode_s:.0f} frames/s)")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rereel", "index", args.archive, "--library", f"{tmp}/lib", "--detector", args.detector],
            capture_output=True, text=True,
        )
        index_s = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr)
            raise SystemExit("indexing failed")
        print(f"rereel index:     {index_s:7.1f} s  ({proc.stdout.strip().splitlines()[-1]})")
    print(f"index / decode:   {index_s / decode_s:7.2f} x   (detector {args.detector}, 4 frames/s embedded)")
    print(f"realtime factor:  {seconds / index_s:7.1f} x   (seconds of video indexed per second)")

    print(f"encoder cpu onnx: {encoder_rate('cpu', 'onnx'):7.1f} images/s")
    print(f"encoder cpu torch:{encoder_rate('cpu', 'torch'):7.1f} images/s")
    import torch

    if torch.cuda.is_available():
        print(f"encoder cuda fp16:{encoder_rate('cuda', 'torch', n=2048):7.1f} images/s ({torch.cuda.get_device_name()})")


if __name__ == "__main__":
    main()
