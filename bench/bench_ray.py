"""Index throughput: the local engine against the Ray engine with 1 and 2 workers, on this machine.

Each run indexes the same clips into a fresh library (effnet-lite0, content detector) and
prints seconds of video indexed per wall second, then where the Ray engine's time goes:
  - load: the encoder's load in each actor (once per actor, summed over actors);
  - analyse: `analyse_video` in the actors (decode, detect, embed, thumbnails), summed;
  - serialise: pickling the shot records on the workers + unpickling them on the driver;
  - queue: from a worker finishing a video to the driver holding its row (the object store
    and Ray Data's output queue), summed over videos;
  - write: the driver's SQLite transactions;
  - the rest of the wall time: Ray Data's start-up, scheduling, and actors waiting.
The Ray runs share one local Ray started once (its start-up is printed on its own).

Usage: python bench/bench_ray.py [CLIP...] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "media" / "archive"
CLIPS = ["cc0_mdn_stream_of_water.mp4", "ccby_zwm_tears_of_steel_10s.mp4", "pd_chaplin_excerpt.mp4",
         "ccby_zwm_caminandes_llama_drama_10s.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    from rereel.encoders import create_encoder
    from rereel.library import Library, index_paths
    from rereel.library.ray_engine import connect, index_paths_ray
    from rereel.media import probe

    clips = args.clips or [ARCHIVE / c for c in CLIPS]
    seconds = sum(probe(c).duration for c in clips)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
          f" (shared machine: figures are under others' load; compare ratios within this run)")
    print(f"{len(clips)} clips, {seconds:.1f} s of video")
    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        t = time.perf_counter()
        with Library(work / "local", create=True) as lib:
            enc = create_encoder("effnet-lite0")
            loaded = time.perf_counter() - t
            report = index_paths(clips, lib, enc, "content")
            assert not report.failed, report.failed
        local = time.perf_counter() - t
        print(f"local engine: {local:.1f} s wall ({loaded:.1f} s encoder load), {seconds / local:.2f} s of video/s")

        t = time.perf_counter()
        ray = connect(None)
        print(f"local Ray started in {time.perf_counter() - t:.1f} s ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
        for n in args.workers:
            with Library(work / f"ray{n}", create=True) as lib:
                report = index_paths_ray(clips, lib, "effnet-lite0", workers=n)
                assert not report.failed, report.failed
            tm = report.timings
            wall = tm["wall_s"]
            ser = tm["pickle_s"] + tm["unpickle_s"]
            print(f"ray, {n} worker(s): {wall:.1f} s wall, {seconds / wall:.2f} s of video/s ({local / wall:.2f}x local);"
                  f" summed over actors: load {tm['load_s']:.1f} s, analyse {tm['analyse_s']:.1f} s;"
                  f" serialise {ser * 1000:.0f} ms, queue {tm['wait_s']:.1f} s, driver writes {tm['write_s'] * 1000:.0f} ms;"
                  f" rest (Ray Data start-up, scheduling, idle) {wall - (tm['load_s'] + tm['analyse_s']) / n:.1f} s")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
