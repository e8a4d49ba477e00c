"""A corpus of damaged files, made from real clips, indexed in one run of the command line.

Whatever FFmpeg makes of each file, `rereel index` must name every file it refuses with a
reason, never crash or print a traceback, and leave a catalog that passes SQLite's check.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import require_media

SRC = Path(__file__).resolve().parents[1] / "src"
CLIPS = ["cc0_mdn_stream_of_water.mp4", "pd_tmh_vp9_tractor.webm", "pd_pixwarp_roundhay_garden_scene_1888.m4v"]


def _corpus(folder: Path) -> list[Path]:
    made = []

    def put(name: str, data: bytes):
        (folder / name).write_bytes(data)
        made.append(folder / name)

    blobs = {n: (require_media("archive", n)).read_bytes() for n in CLIPS}
    for n, data in blobs.items():
        stem, ext = Path(n).stem[:12], Path(n).suffix
        for share in (0.05, 0.3, 0.6, 0.95):
            put(f"{stem}_cut{int(share * 100)}{ext}", data[: int(len(data) * share)])
        flipped = bytearray(data)
        for i in range(len(data) // 7, len(data), len(data) // 7):  # a byte flipped every seventh of the file
            flipped[i] ^= 0xFF
        put(f"{stem}_flipped{ext}", bytes(flipped))
        put(f"{stem}_zero_header{ext}", bytes(4096) + data[4096:])
    a, b = blobs[CLIPS[0]], blobs[CLIPS[1]]
    put("two_files_end_to_end.mp4", a + b)
    put("two_files_end_to_end.webm", b + a)
    return made


def test_damaged_corpus_is_indexed_or_named(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = _corpus(corpus)
    lib = tmp_path / "lib"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "rereel", "index", str(corpus), "--library", str(lib),
                           "--encoder", "effnet-lite0"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr.replace("error:", "")
    failed = {line[len("error: "):].split(": ", 1)[0]: line for line in proc.stderr.splitlines() if line.startswith("error: ")}
    info = json.loads(subprocess.run([sys.executable, "-m", "rereel", "info", "--library", str(lib), "--json"],
                                     capture_output=True, text=True, env=env, check=True).stdout)
    indexed = {Path(v["path"]).name for v in info["items"]}
    for f in files:  # each file is either in the library or named with a reason, never both, never neither
        named = str(f) in failed
        assert named != (f.name in indexed), (f, failed.get(str(f)))
        if named:
            assert len(failed[str(f)]) > len(f"error: {f}: ") + 5  # a reason, not just the name
    for v in info["items"]:  # info gives what plays: the decoded length, not the header's
        assert abs(v["seconds"] - _played(Path(v["path"]))) < 0.1, v
    with sqlite3.connect(lib / "catalog.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert all(f"{Path(c).stem[:12]}_cut5" not in " ".join(indexed) for c in CLIPS)  # 5 % of a file: never a video


def _played(path: Path) -> float:
    """Where the last frame that decodes ends, by a plain PyAV decode that stops at the first error."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = []
        try:
            for frame in c.decode(s):
                times.append(float(frame.pts * s.time_base))
        except av.error.FFmpegError:
            pass
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1 / float(s.average_rate)
    return times[-1] - times[0] + step
