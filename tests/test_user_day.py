"""A new user's day, from the outside: relative paths everywhere, every command run from a
folder other than the one the library was made in, then the archive moves and is relinked.

Each step is the real `rereel` command in a subprocess with its own working folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rereel.media import decode_frames, probe

CLIPS = ["cc0_mdn_flower_bloom.mp4", "ccby_pixwarp_peony_timelapse.avi", "cc0_mdn_stream_of_water.mp4"]
TARGET = "ccby_zwm_caminandes_llama_drama_10s.mp4"


def rereel(cwd: Path, *args, ok: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "REREEL_LIBRARY"}
    proc = subprocess.run([sys.executable, "-m", "rereel", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)
    if ok:
        assert proc.returncode == 0, f"rereel {' '.join(map(str, args))} in {cwd}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_index_here_work_elsewhere_move_and_relink(archive, tmp_path):
    home, work, elsewhere = tmp_path / "home", tmp_path / "work", tmp_path / "elsewhere"
    for d in (home / "footage", work, elsewhere):
        d.mkdir(parents=True)
    for name in CLIPS:
        shutil.copy(archive / name, home / "footage" / name)
    shutil.copy(archive / TARGET, work / TARGET)

    # Index with relative paths from the user's home folder.
    rereel(home, "index", "footage", "--library", "lib")
    # Indexing again from another folder finds every file already there (not "moved").
    again = rereel(elsewhere, "index", "../home/footage", "--library", "../home/lib")
    assert "indexed 0, skipped 3, failed 0" in again.stdout + again.stderr, again.stdout + again.stderr
    items = json.loads(rereel(work, "info", "--json", "--library", "../home/lib").stdout)["items"]
    assert sorted(Path(i["path"]) for i in items) == sorted((home / "footage" / n).resolve() for n in CLIPS)

    # Remake from another folder, relative target and library.
    # The content detector: this test is about paths, and TransNetV2 would add a model load per run.
    fast = ("--detector", "content")
    rereel(work, "remake", TARGET, *fast, "-o", "remake.mp4", "--library", "../home/lib", "--timeline", "remake.otio")
    info = probe(work / "remake.mp4")
    used = [n for n in CLIPS if n in (work / "remake.credits.txt").read_text()]  # credits beside the video
    assert used, (work / "remake.credits.txt").read_text()
    assert abs(info.duration - probe(work / TARGET).duration) < 0.2

    # Render the timeline from a third folder, and search the library from there.
    rereel(elsewhere, "render", "../work/remake.otio", "-o", "again.mp4")
    assert all(n in (elsewhere / "again.credits.txt").read_text() for n in used)
    assert sum(1 for _ in decode_frames(elsewhere / "again.mp4")) == sum(1 for _ in decode_frames(work / "remake.mp4"))
    found = rereel(elsewhere, "similar", str(archive / "cc0_mdn_flower_bloom.mp4") + "@1-2", "-o", "similar.png",
                   "--library", str(home / "lib"), "--top", "2")
    assert (elsewhere / "similar.png").exists(), found.stdout

    # The archive moves to another disk: the library's paths are stale until relinked.
    moved = tmp_path / "disk2" / "footage"
    moved.parent.mkdir()
    shutil.move(home / "footage", moved)
    broken = rereel(work, "remake", TARGET, *fast, "-o", "broken.mp4", "--library", "../home/lib", ok=False)
    assert broken.returncode != 0 and "footage" in broken.stderr and not (work / "broken.mp4").exists()
    rereel(elsewhere, "relink", str(home / "footage"), str(moved), "--library", "../home/lib")
    rereel(work, "remake", TARGET, *fast, "-o", "relinked.mp4", "--library", "../home/lib")
    assert abs(probe(work / "relinked.mp4").duration - info.duration) < 0.05
    assert not list(work.glob("*partial*")) and not list(work.glob(".*partial*"))
