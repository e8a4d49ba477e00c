"""Indexing speed against the physical floor: a bare PyAV decode of the same files.

Prints, from one run on this machine (2 cores where the figures in the issue were taken; the
machine is shared, so the load average is printed beside them):
  - bare decode of every archive video (all frames, threaded, no conversion): wall and CPU time;
  - indexing the same files into a fresh library, in a fresh process as `rereel index` runs
    (imports, worker processes and model loading included; one worker process a core, the
    encoder in the CPU's precision): wall and CPU time, workers' included;
  - their ratios (how far indexing is above the floor), wall and CPU;
  - the split of the indexing time: with worker processes, each stage summed over them (each
    worker does all in its one thread); with one process (`--jobs 1`), in the decode thread
    decoding and scaling, in the main thread detection, encoder, thumbnails and waiting for
    frames (the two threads overlap, so the stages add up to more than the wall time); and the
    catalog writes;
  - frames decoded and embedded (sampled by change, `library.indexer`);
  - encoder throughput (images/s, batch 32) on the CPU backend in use, and on CUDA if present.

With --film, the same rounds also measure one HD film: an archive's films are mostly 720p or
1080p and minutes long, where the sample archive's 35 clips are short and mostly smaller (64%
of its frames have at most 640x480's pixels). Decoding costs more per frame the larger the
picture, while the detector, the scaler's output and the encoder cost the same per frame, so the
ratio depends on the footage. One film is also indexed as `rereel index` indexes a lone file: in one process,
decoding in a thread beside the rest, where the clips go to a worker process a core. The film
is made once from the archive's clips (each stretched to 1280x720 and played in turn until
FILM_SECONDS, H.264 at rereel's render settings) into out/bench/, where later runs reuse it.

Usage: python bench/bench_index.py [ARCHIVE_DIR] [--detector content|transnetv2] [--fixed] [--jobs N]
                                   [--rounds 3] [--one-process] [--film]
  --rounds R measures R rounds of (bare decode, index) and prints each ratio and their median:
    this machine's speed drifts by up to a third within minutes.
  --one-process also indexes with --jobs 1 in each round, for the worker processes' gain.
  --film also measures the HD film (above), after the archive.
  --fixed embeds a fixed 4 frames/s, as indexing did before sampling by change.
  --jobs N indexes with N worker processes (1: in one process, with threads).
  REREEL_PRECISION=f32 runs the encoder in float32 where the CPU would take bfloat16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FILM_SECONDS = 300
FILM_FPS = 24.0


def film(archive: Path) -> Path:
    """The HD film --film measures (see above), made once from `archive`'s clips."""
    from rereel.errors import MediaError
    from rereel.media import VideoWriter, decode_frames, find_videos

    folder = ROOT / "out" / "bench" / f"film-720p-{FILM_SECONDS}s-{archive.resolve().name}"
    path = folder / "film.mp4"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    for left in folder.glob(".film.mp4.*"):  # a build killed part way (a signal) leaves its partial file
        left.unlink()
    clips = sorted(find_videos([archive]), key=lambda p: p.name)
    want = int(FILM_SECONDS * FILM_FPS)
    print(f"making the HD film once: {path} ({FILM_SECONDS} s at 1280x720 from {len(clips)} clips; a few minutes)")
    n = 0
    with VideoWriter(path, 1280, 720, FILM_FPS) as w:  # takes its name when complete
        while n < want:
            before = n
            for clip in clips:
                try:
                    for f in decode_frames(clip):
                        w.write(f.rgb(1280, 720))
                        n += 1
                        if n == want:
                            return path
                except MediaError as e:  # a clip that does not decode (to its end) gives what it gave
                    print(f"film: {e}")
            if n == before:
                raise SystemExit(f"no clip in {archive} gave a frame to make the film from")
    return path


def video_seconds(files: list[Path]) -> float:
    total = 0.0
    for f in files:
        with av.open(str(f)) as c:
            total += float(c.duration or 0) / 1e6
    return total


def bare_decode(files: list[Path]) -> tuple[float, float, int]:
    frames = 0
    t, c = time.perf_counter(), time.process_time()
    for f in files:
        with av.open(str(f)) as container:
            if not container.streams.video:
                continue
            s = container.streams.video[0]
            s.thread_type = "AUTO"
            for _ in container.decode(s):
                frames += 1
    return time.perf_counter() - t, time.process_time() - c, frames


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


def worker(archive: str, library: str, detector: str, fixed: bool, jobs: int | None) -> None:
    """Index as `rereel index` does, in this (fresh) process; print the timings as JSON."""
    from rereel.encoders import create_encoder
    from rereel.library import Library, index_paths
    from rereel.library.workers import default_jobs
    from rereel.media import find_videos

    timings: dict[str, float] = {}
    encoder = create_encoder()
    jobs = jobs or default_jobs(encoder.device)
    jobs = min(jobs, len(find_videos([Path(archive)])))  # as index_paths does: a lone file in this process
    with Library(library, create=True) as lib:
        report = index_paths([Path(archive)], lib, encoder, detector, timings=timings, jobs=jobs,
                             **({"min_sample_fps": None} if fixed else {}))
    timings |= {"indexed": len(report.indexed), "failed": len(report.failed), "jobs": jobs,
                "precision": getattr(encoder, "precision", "?")}
    print(json.dumps(timings))


def index_once(args, jobs: int | None) -> tuple[float, float, dict]:
    """Index the archive into a fresh library in a fresh process: wall s, CPU s (all its
    processes), and the worker's timings."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, args.archive, "--worker", f"{tmp}/lib", "--detector", args.detector,
             *(["--fixed"] if args.fixed else []), *(["--jobs", str(jobs)] if jobs else [])],
            capture_output=True, text=True,
        )
        index_s = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr)
            raise SystemExit("indexing failed")
    index_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return index_s, index_cpu, json.loads(proc.stdout.strip().splitlines()[-1])


def rounds(args, files: list[Path], label: str, archive: str | None = None) -> list[str]:
    """Rounds of (bare decode, index) of `files`; prints each round and the split, returns the
    median line."""
    from argparse import Namespace

    seconds = video_seconds(files)
    run_args = Namespace(**{**vars(args), "archive": archive or args.archive})
    # This machine's speed drifts by up to a third within minutes (by half on a shared AMD host):
    # each round measures the decode and then the index, and the ratio is taken within the
    # round; the median is the figure.
    ratios, cpu_ratios = [], []
    for r in range(1, args.rounds + 1):
        decode_s, decode_cpu, frames = bare_decode(files)
        print(f"round {r} bare decode:  {decode_s:7.1f} s  cpu {decode_cpu:6.1f} s  ({frames} frames, {frames / decode_s:.0f} frames/s)")
        runs = [args.jobs] + ([1] if args.one_process else [])
        for jobs in runs:
            index_s, index_cpu, tm = index_once(run_args, jobs)
            what = f"{tm['jobs']} worker processes" if tm["jobs"] > 1 else "one process"
            print(f"round {r} index:        {index_s:7.1f} s  cpu {index_cpu:6.1f} s  ({tm['indexed']} indexed, "
                  f"{tm['failed']} failed; {what}, encoder in {tm['precision']})")
            print(f"round {r} index/decode: {index_s / decode_s:7.2f} x wall, {index_cpu / decode_cpu:.2f} x cpu")
            if jobs == args.jobs:
                ratios.append(index_s / decode_s)
                cpu_ratios.append(index_cpu / decode_cpu)
                last = tm, index_s
    tm, index_s = last
    sampling = "4 frames/s embedded" if args.fixed else "sampled by change, 1-4 frames/s embedded"
    line = (f"{label} {statistics.median(ratios):7.2f} x wall, {statistics.median(cpu_ratios):.2f} x cpu, "
            f"median of {len(ratios)} rounds (detector {args.detector}, {sampling})")
    print(line)
    print(f"realtime factor:  {seconds / index_s:7.1f} x   (seconds of video indexed per second, last round)")
    print(f"frames:           {tm['frames']} decoded, {tm['embedded']} embedded ({tm['embedded'] / seconds:.2f} a second of video)")
    if tm["jobs"] > 1:  # each worker does every stage in its one thread; summed over the workers
        print("split (s):        summed over the workers: decode {decode:.1f}, scale {scale:.1f}, detect {detect:.1f}, "
              "encoder {encode:.1f}, thumbnails {thumbs:.1f} | writes {write:.1f}".format(**tm))
    else:
        print("split (s):        decode thread: decode {decode:.1f}, scale {scale:.1f} | main thread: detect {detect:.1f}, "
              "encoder {encode:.1f}, thumbnails {thumbs:.1f}, waiting for frames {wait:.1f} | writes {write:.1f}".format(**tm))
    return [line]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive", nargs="?", default=str(ROOT.parent / "shared" / "media" / "archive"))
    ap.add_argument("--detector", default="content")
    ap.add_argument("--fixed", action="store_true", help="embed a fixed 4 frames/s instead of sampling by change")
    ap.add_argument("--jobs", type=int, help="worker processes (default: as `rereel index`, one a core on the CPU)")
    ap.add_argument("--rounds", type=int, default=3, help="decode-then-index rounds; the median ratio is printed")
    ap.add_argument("--one-process", action="store_true", help="each round also indexes with --jobs 1")
    ap.add_argument("--film", action="store_true", help="also measure one HD film made from the archive's clips (see above)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.archive, args.worker, args.detector, args.fixed, args.jobs)
    from rereel.media import find_videos

    files = find_videos([Path(args.archive)])
    seconds = video_seconds(files)
    load = os.getloadavg()[0]
    from rereel.device import cpu_has_native_bf16

    try:  # the CPU's name: the encoder's speed differs several-fold between CPUs (bfloat16 or not)
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, bfloat16 {'native' if cpu_has_native_bf16() else 'not native'}; "
          f"{len(files)} files, {seconds:.0f} s of video; load average {load:.1f} at the start")

    summary = rounds(args, files, "index / decode:  ")
    if args.film:
        path = film(Path(args.archive))
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            print(f"HD film: {path}, {float(c.duration or 0) / 1e6:.0f} s, {s.width}x{s.height} {s.codec_context.name}")
        summary += rounds(args, [path], "film index/decode:", archive=str(path))
    print("\n".join(summary))
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other jobs share the cores: compare ratios, not seconds)")

    print(f"encoder cpu openvino: {encoder_rate('cpu', 'openvino'):7.1f} images/s")
    print(f"encoder cpu onnx: {encoder_rate('cpu', 'onnx'):7.1f} images/s")
    print(f"encoder cpu torch:{encoder_rate('cpu', 'torch'):7.1f} images/s")
    import torch

    if torch.cuda.is_available():
        print(f"encoder cuda fp16:{encoder_rate('cuda', 'torch', n=2048):7.1f} images/s ({torch.cuda.get_device_name()})")


if __name__ == "__main__":
    main()
