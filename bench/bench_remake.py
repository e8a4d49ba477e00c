"""Remake time against its floor: a plain re-encode of the same trailer to H.264.

The remake has to decode and encode the target's length of video anyway, so a decode of the
trailer plus an H.264 encode at the same settings (size, fps, CRF, preset, AAC audio) is the
floor. Prints both wall times and their ratio (the issue's target is <= 3x), measured in one run,
for the stand-alone remake and for stand-alone + side-by-side written in the same pass.

Usage: python bench/bench_remake.py [LIBRARY] [TRAILER]
  LIBRARY defaults to out/library (made by `make demo`); it is built from the archive if missing.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def main() -> None:
    library = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "out" / "library"
    trailer = Path(sys.argv[2]) if len(sys.argv) > 2 else MEDIA / "trailers" / "sintel_trailer_480x270.webm"
    if not (library / "catalog.sqlite").exists():
        print(f"building {library} from {MEDIA / 'archive'} first")
        subprocess.run([sys.executable, "-m", "rereel", "index", str(MEDIA / "archive"), "--library", str(library)], check=True)
    from rereel.media import VideoWriter, decode_frames, probe

    info = probe(trailer)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; target {trailer.name}, {info.duration:.1f} s, "
          f"{info.width}x{info.height} @ {info.fps:g}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with VideoWriter(Path(tmp) / "plain.mp4", info.width, info.height, info.fps, audio_from=trailer) as w:
            for f in decode_frames(trailer):
                w.write(f.rgb(info.width, info.height))
        floor = time.perf_counter() - t
        print(f"plain re-encode:            {floor:6.1f} s")
        for label, extra in (("remake", []), ("remake + side-by-side", ["--side-by-side-out", f"{tmp}/sbs.mp4"])):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rereel", "remake", str(trailer), "-o", f"{tmp}/remake.mp4",
                            "--library", str(library), "--timeline", f"{tmp}/r.otio", *extra],
                           check=True, capture_output=True)
            took = time.perf_counter() - t
            print(f"{label + ':':27s} {took:6.1f} s   ratio {took / floor:4.2f}x")


if __name__ == "__main__":
    main()
