"""The archive library on real footage: index, info, resume, fingerprints, encoders, search."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import sigint_as_at_a_terminal

from rereel.encoders import Encoder, Features, colour_signature, create_encoder, register
from rereel.errors import RereelError
from rereel.library import Library, ProgressSink, index_paths
from rereel.library.reembed import reembed_library
from rereel.media import decode_frames

SRC = Path(__file__).resolve().parents[1] / "src"  # the package, whatever folder a command runs in

SMALL = [
    "cc0_mdn_stream_of_water.mp4",
    "pd_chaplin_excerpt.mp4",
    "pd_pixwarp_nasa_we_are_going.mov",
    "ccby_intel_asl_sign_book.mkv",
    "pd_pixwarp_nasa_cyclone_freddy_vertical.mp4",
    "cc0_mdn_flower_bloom.mp4",
    "pd_tmh_vp9_tractor.webm",
]


def rereel(*args, check=False, timeout=600, cwd=None):
    """Run the real command line in a subprocess, as a user would (in folder `cwd`)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "rereel", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"rereel {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def small_library(archive, tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib") / "library"
    rereel("index", *[archive / n for n in SMALL], "--library", lib, check=True)
    return lib


@register("test-pixels")
class PixelEncoder(Encoder):
    """A tiny deterministic encoder (4x4 colour thumbnails) for testing encoder changes."""

    version = "1"
    dim = 48
    input_size = (32, 32)

    def __init__(self, device=None):
        pass

    def embed(self, frames: np.ndarray) -> Features:
        n = len(frames)
        small = frames.reshape(n, 4, 8, 4, 8, 3).mean(axis=(2, 4)).reshape(n, -1).astype(np.float32)
        small /= np.linalg.norm(small, axis=1, keepdims=True) + 1e-8
        return Features(small, small.astype(np.float16), colour_signature(frames))


def test_info_json_lists_every_video(small_library):
    proc = rereel("info", "--library", small_library, "--json", check=True)
    info = json.loads(proc.stdout)
    assert {"videos", "shots", "seconds", "encoder"} <= info.keys()
    assert info["videos"] == len(SMALL)
    assert info["encoder"] == "effnet-lite0@1"
    by_name = {v["name"]: v for v in info["items"]}
    assert by_name["pd_pixwarp_nasa_we_are_going.mov"]["shots"] >= 6  # a rapid montage
    assert by_name["pd_chaplin_excerpt.mp4"]["shots"] == 1  # one shot
    assert info["shots"] == sum(v["shots"] for v in info["items"])
    assert 40 < info["seconds"] < 45  # the seven clips last 42.5 s together


def test_shots_have_several_frames_grids_colours_and_thumbnails(small_library):
    with Library(small_library) as lib:
        shots = lib.catalog.shots()
        for s in shots:
            frames = lib.catalog.shot_frames(s["id"])
            if s["end"] - s["start"] >= 0.75:
                assert len(frames["time"]) >= 2, "several frames per shot, not one keyframe"
            assert np.all((frames["time"] >= s["start"] - 1e-6) & (frames["time"] < s["end"]))
            assert frames["grid"].shape[1] == 9 * 320 and frames["colour"].shape[1] > 0
            thumb = Image.open(BytesIO(lib.catalog.thumbnail(s["id"])))
            assert thumb.width == 320
        vertical = [s for s in shots if lib.catalog.video(s["video_id"])["name"].endswith("vertical.mp4")][0]
        assert Image.open(BytesIO(lib.catalog.thumbnail(vertical["id"]))).height > 320  # stays upright/portrait


def test_search_finds_the_source_of_a_frame(small_library, archive):
    enc = create_encoder("effnet-lite0")
    frame = next(f for f in decode_frames(archive / "cc0_mdn_flower_bloom.mp4") if f.time >= 2.5)
    query = enc.embed(frame.rgb(224, 224)[None]).embedding
    with Library(small_library) as lib:
        scores, ids = lib.vectors("shots").search(query, 3)
        best = lib.catalog.shot(int(ids[0, 0]))
        assert best["name"] == "cc0_mdn_flower_bloom.mp4"
        assert scores[0, 0] > scores[0, 1]
        frames_index = lib.vectors("frames")
        assert frames_index.count == lib.catalog.stats()["frames"]


def test_reindex_does_nothing_and_copies_are_known(small_library, archive, tmp_path):
    copy = tmp_path / "same_content_other_name.mp4"
    shutil.copy(archive / "pd_chaplin_excerpt.mp4", copy)
    before = json.loads(rereel("info", "--library", small_library, "--json").stdout)
    proc = rereel("index", archive / SMALL[0], copy, "--library", small_library, check=True)
    assert "indexed 0, skipped 2" in proc.stdout
    after = json.loads(rereel("info", "--library", small_library, "--json").stdout)
    assert after["shots"] == before["shots"] and after["videos"] == before["videos"]


def test_bad_files_are_named_and_the_batch_goes_on(archive, media, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("hello")
    data = (archive / "ccby_mdn_tears_of_steel_battle_clip.webm").read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 3])
    bad = [tmp_path / "empty.mp4", tmp_path / "notes.mp4", tmp_path / "cut.webm",
           media / "odd" / "audio_only_apollo15_opus.mp4", tmp_path / "missing.mp4"]
    lib = tmp_path / "lib"
    proc = rereel("index", *bad[:2], archive / "cc0_mdn_stream_of_water.mp4", *bad[2:], "--library", lib)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad)
    for path, reason in zip(bad, ["empty file", "not a readable video", "truncated", "audio only", "no such file"]):
        assert any(str(path) in e and reason in e for e in errors), (path, reason, errors)
    with Library(lib) as opened:
        assert opened.catalog.stats()["videos"] == 1 and opened.catalog.integrity_ok()


def _videos_committed(db: Path) -> int:
    """Videos a running `rereel index` has committed to catalog `db` so far (0 before it exists)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
    except sqlite3.OperationalError:  # the schema not written yet
        return 0


def test_kill_9_resumes_without_redoing_finished_files(archive, tmp_path):
    lib = tmp_path / "lib"
    files = [archive / "cc0_mdn_stream_of_water.mp4", archive / "ccby_intel_car_detection_topdown.mp4",
             archive / "pd_chaplin_excerpt.mp4"]
    proc = subprocess.Popen([sys.executable, "-m", "rereel", "index", *map(str, files), "--library", str(lib)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = lib / "catalog.sqlite"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if _videos_committed(db) >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first video was never committed")
        proc.send_signal(signal.SIGKILL)  # mid-way through the second, longer file
    finally:
        proc.wait()
    with Library(lib) as opened:
        assert opened.catalog.integrity_ok()
        done = opened.catalog.stats()["videos"]
        assert 1 <= done < 3
    again = rereel("index", *files, "--library", lib, check=True)
    assert f"skipped {done}" in again.stdout and f"indexed {3 - done}" in again.stdout
    with Library(lib) as opened:
        assert opened.catalog.stats()["videos"] == 3


def test_other_encoder_is_detected_and_reembed_switches(archive, tmp_path):
    lib_dir = tmp_path / "lib"
    with Library(lib_dir, create=True) as lib:
        report = index_paths([archive / "cc0_mdn_stream_of_water.mp4", archive / "pd_chaplin_excerpt.mp4"],
                             lib, create_encoder("test-pixels"), "content")
        assert len(report.indexed) == 2
        assert lib.vectors("shots").dim == 48
    proc = rereel("index", archive / "cc0_mdn_flower_bloom.mp4", "--library", lib_dir)
    assert proc.returncode == 2 and "test-pixels@1" in proc.stderr and "rereel reembed" in proc.stderr
    with Library(lib_dir) as lib:
        with pytest.raises(RereelError, match="reembed"):
            lib.require_encoder("effnet-lite0@1")
        failed = reembed_library(lib, create_encoder("effnet-lite0"), ProgressSink())
        assert failed == []
        lib.require_encoder("effnet-lite0@1")
    with Library(lib_dir) as lib:  # a fresh open rebuilds the stale FAISS cache at the new size
        vectors = lib.vectors("shots")
        assert vectors.dim == 1280 and vectors.count == 2
        shot = lib.catalog.shots()[0]
        scores, ids = vectors.search(vectors.vector(shot["id"]), 1)
        assert ids[0, 0] == shot["id"] and scores[0, 0] > 0.99


def test_damaged_vector_cache_is_rebuilt(small_library, tmp_path):
    lib_dir = tmp_path / "copy"
    shutil.copytree(small_library, lib_dir)
    (lib_dir / "shots.faiss").write_bytes(b"garbage")
    with Library(lib_dir) as lib:
        assert lib.vectors("shots").count == lib.catalog.stats()["shots"]


def test_missing_library_is_a_clear_error(tmp_path):
    proc = rereel("info", "--library", tmp_path / "nowhere")
    assert proc.returncode == 2 and "no library here" in proc.stderr


# -- paths: absolute in the catalog, usable from any folder, relinked after a move -------------

TWO = ["cc0_mdn_stream_of_water.mp4", "pd_pixwarp_roundhay_garden_scene_1888.m4v"]


def test_commands_work_from_another_folder_and_relink_follows_a_move(archive, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "clips").mkdir(parents=True)
    b.mkdir()
    for n in TWO:
        shutil.copy(archive / n, a / "clips" / n)
    rereel("index", "clips", "--library", "lib", cwd=a, check=True)  # relative paths, as typed
    info = json.loads(rereel("info", "--library", "../a/lib", "--json", cwd=b, check=True).stdout)
    assert sorted(v["path"] for v in info["items"]) == sorted(str((a / "clips" / n).resolve()) for n in TWO)
    again = rereel("index", "../a/clips", "--library", "../a/lib", cwd=b, check=True)
    assert "indexed 0, skipped 2" in again.stdout
    assert json.loads(rereel("info", "--library", "../a/lib", "--json", cwd=b).stdout)["items"] == info["items"]
    rereel("similar", "#1", "-o", "like.mp4", "--top", "1", "--max-shot", "0.5", "--width", "128",
           "--library", "../a/lib", cwd=b, check=True)  # reads archive frames by the stored path
    assert (b / "like.mp4").stat().st_size > 0
    rereel("reembed", "--library", "../a/lib", cwd=b, check=True)

    # The archive moves to another disk; one file there is not the one indexed.
    moved = tmp_path / "other_disk" / "footage"
    moved.parent.mkdir()
    shutil.move(a / "clips", moved)
    shutil.copy(archive / "pd_chaplin_excerpt.mp4", moved / TWO[1])  # same name, other content
    proc = rereel("relink", a / "clips", "../other_disk/footage", "--library", "../a/lib", cwd=b)
    assert proc.returncode == 1 and "relinked 1 video from" in proc.stdout
    assert str(moved / TWO[1]) in proc.stderr and "fingerprint" in proc.stderr
    with Library(a / "lib") as lib:
        by_name = {v["name"]: v for v in lib.catalog.videos()}
        assert by_name[TWO[0]]["path"] == str((moved / TWO[0]).resolve())
        assert by_name[TWO[1]]["path"] == str((a / "clips" / TWO[1]).resolve())  # left as it was
        shot = lib.catalog.shot(lib.catalog.shots(by_name[TWO[0]]["id"])[0]["id"])
        frame = next(iter(decode_frames(shot["path"], start=shot["start"])))
        assert frame.rgb(64, 36).std() > 1
    proc = rereel("relink", tmp_path / "nowhere", moved, "--library", a / "lib")
    assert proc.returncode == 2 and "no video in the library lies under" in proc.stderr


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    name TEXT NOT NULL, size INTEGER NOT NULL, duration REAL NOT NULL, fps REAL NOT NULL, vfr INTEGER NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, rotation INTEGER NOT NULL, has_audio INTEGER NOT NULL,
    codec TEXT NOT NULL, frames INTEGER NOT NULL, detector TEXT NOT NULL, encoder TEXT NOT NULL,
    indexed_at REAL NOT NULL);
CREATE TABLE shots (id INTEGER PRIMARY KEY, video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start_frame INTEGER NOT NULL, end_frame INTEGER NOT NULL, start REAL NOT NULL,
    end REAL NOT NULL, luma REAL NOT NULL, embedding BLOB NOT NULL, thumb BLOB NOT NULL);
CREATE TABLE frames (id INTEGER PRIMARY KEY, shot_id INTEGER NOT NULL REFERENCES shots(id) ON DELETE CASCADE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE, frame_index INTEGER NOT NULL,
    time REAL NOT NULL, embedding BLOB NOT NULL, grid BLOB NOT NULL, colour BLOB NOT NULL);
INSERT INTO meta VALUES ('schema', '1'), ('encoder', 'effnet-lite0@1'), ('dim', '1280');
"""


def test_schema_1_library_is_migrated_once(archive, tmp_path):
    import hashlib

    work, lib = tmp_path / "work", tmp_path / "work" / "old-library"
    (work / "clips").mkdir(parents=True)
    lib.mkdir()
    clip = work / "clips" / "water.mp4"
    shutil.copy(archive / TWO[0], clip)
    data = clip.read_bytes()  # under 3 MiB: the fingerprint hashes the size and every byte
    fp = hashlib.blake2b(len(data).to_bytes(8, "little") + data, digest_size=16).hexdigest()
    con = sqlite3.connect(lib / "catalog.sqlite")
    con.executescript(V1_SCHEMA)
    row = "INSERT INTO videos VALUES (?, ?, ?, ?, 1, 3.0, 30, 0, 640, 360, 0, 0, 'h264', 90, 'content', 'effnet-lite0@1', 0)"
    con.execute(row, (1, fp, "clips/water.mp4", "water.mp4"))  # relative, as `rereel index clips` stored it
    con.execute(row, (2, "0" * 32, "elsewhere/gone.mp4", "gone.mp4"))  # relative to a folder not known
    con.commit()
    con.close()

    proc = rereel("info", "--library", "old-library", "--json", cwd=work, check=True)
    paths = {v["name"]: v["path"] for v in json.loads(proc.stdout)["items"]}
    assert paths == {"water.mp4": str(clip.resolve()), "gone.mp4": "elsewhere/gone.mp4"}
    assert "rereel relink" in proc.stderr and "elsewhere/gone.mp4" in proc.stderr
    with sqlite3.connect(lib / "catalog.sqlite") as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "2"

    # The folder it was relative to is found again: relink repairs it by fingerprint.
    (tmp_path / "found").mkdir()
    shutil.copy(archive / TWO[0], tmp_path / "found" / "gone.mp4")
    proc = rereel("relink", "elsewhere", tmp_path / "found", "--library", lib, cwd=tmp_path)
    assert proc.returncode == 1 and "relinked 0" in proc.stdout and "fingerprint" in proc.stderr  # 0*32 is not it


# -- the FAISS cache --------------------------------------------------------------------------


def test_index_ahead_of_its_description_is_rebuilt_not_duplicated(archive, tmp_path):
    enc = create_encoder("test-pixels")
    with Library(tmp_path / "lib", create=True) as lib:
        index_paths([archive / TWO[0]], lib, enc, "content")
        lib.vectors("shots")  # saved: index and description agree
    stale = (tmp_path / "lib" / "shots.faiss.json").read_text()
    with Library(tmp_path / "lib") as lib:
        index_paths([archive / TWO[1]], lib, enc, "content")
        lib.vectors("shots")  # saved again with the new rows...
    (tmp_path / "lib" / "shots.faiss.json").write_text(stale)  # ...but "crashed" before the description's rename
    with Library(tmp_path / "lib") as lib:
        vectors = lib.vectors("shots")
        shot_ids = [s["id"] for s in lib.catalog.shots()]
        assert vectors.count == len(shot_ids)
        _, ids = vectors.search(vectors.vector(shot_ids[-1]), len(shot_ids) + 5)
        hits = [i for i in ids[0] if i >= 0]
        assert sorted(hits) == sorted(shot_ids)  # each shot once


# -- two writers --------------------------------------------------------------------------------

THREE = TWO + ["pd_pixwarp_nasa_cyclone_freddy_vertical.mp4"]


def test_two_index_runs_into_one_library(archive, tmp_path):
    lib = tmp_path / "lib"
    cmd = [sys.executable, "-m", "rereel", "index", *[str(archive / n) for n in THREE], "--library", str(lib)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    for r, (stdout, stderr) in zip(runs, outs):
        assert r.returncode == 0, stderr
        assert "Error" not in stderr and "Traceback" not in stderr
    done = [int(stdout.split("indexed ")[1].split(",")[0]) for stdout, _ in outs]
    assert sum(done) == 3  # each file analysed by one run, skipped by the other
    with sqlite3.connect(lib / "catalog.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = [r[0] for r in con.execute("SELECT name FROM videos")]
        assert sorted(names) == sorted(THREE)
        assert con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT video_id, idx FROM shots)").fetchone()[0] == \
            con.execute("SELECT COUNT(*) FROM shots").fetchone()[0]
        assert con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT video_id, frame_index FROM frames)").fetchone()[0] == \
            con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    with Library(lib) as opened:
        vectors = opened.vectors("frames")
        frame_ids = [r[0] for r in opened.catalog.db.execute("SELECT id FROM frames")]
        _, ids = vectors.search(vectors.vector(frame_ids[0]), len(frame_ids) + 10)
        assert sorted(i for i in ids[0] if i >= 0) == sorted(frame_ids)


def _catalog_shots(lib: Path) -> dict[str, list[tuple[int, int, int]]]:
    """Per video name: (first frame, end frame, embedded frames) of each shot."""
    with sqlite3.connect(lib / "catalog.sqlite") as con:
        rows = con.execute("SELECT v.name, s.start_frame, s.end_frame, (SELECT COUNT(*) FROM frames f WHERE f.shot_id = s.id) "
                           "FROM shots s JOIN videos v ON v.id = s.video_id ORDER BY v.name, s.idx").fetchall()
    out: dict[str, list] = {}
    for name, a, b, n in rows:
        out.setdefault(name, []).append((a, b, n))
    return out


def test_worker_processes_index_what_one_process_does(small_library, archive, tmp_path):
    """`rereel index` analyses files in one-threaded worker processes (two on this machine): the
    same shots and sampled frames as one process analysing them in turn, and near-equal vectors."""
    from rereel.library.workers import default_jobs

    if default_jobs("cpu") >= 2:  # two cores and the memory for two workers: the small library was made with them
        known, new = [archive / SMALL[0], archive / SMALL[2]], archive / SMALL[1]
        assert "2 worker processes" in rereel("index", *known, "--library", tmp_path / "two", check=True).stderr
        # Resumed with one new file among the known ones: one worker, not one a core. The new
        # file is the largest, so it goes out first, before the known ones are checked.
        assert all(new.stat().st_size > k.stat().st_size for k in known)
        again = rereel("index", *known, new, "--library", tmp_path / "two", check=True)
        assert "indexed 1, skipped 2" in again.stdout and "3 files, 1 worker process " in again.stderr, again.stderr
    one = tmp_path / "one"
    rereel("index", *[archive / n for n in SMALL], "--library", one, "--jobs", "1", check=True)
    assert _catalog_shots(one) == _catalog_shots(small_library) and len(_catalog_shots(one)) == len(SMALL)
    ea, eb = ({name: np.frombuffer(e, np.float32) for name, e in sqlite3.connect(lib / "catalog.sqlite").execute(
        "SELECT v.name || ':' || f.frame_index, f.embedding FROM frames f JOIN videos v ON v.id = f.video_id")}
        for lib in (one, small_library))
    assert ea.keys() == eb.keys()
    cos = np.array([float(ea[k] @ eb[k]) for k in ea])
    assert cos.min() > 0.99, cos.min()


def test_a_worker_that_dies_fails_its_file_and_the_batch_goes_on(archive, tmp_path, monkeypatch):
    """A worker killed while it analyses a file (as FFmpeg crashing on it would) is replaced: the
    file is tried once more, then named failed; the other files are indexed; no process is left."""
    import multiprocessing

    from rereel.library import workers

    doomed = archive / "pd_chaplin_excerpt.mp4"
    give = workers._Worker.give

    def give_and_kill(self, job):
        give(self, job)
        if job.path == doomed:
            os.kill(self.process.pid, signal.SIGKILL)

    monkeypatch.setattr(workers._Worker, "give", give_and_kill)
    files = [archive / "cc0_mdn_stream_of_water.mp4", doomed, archive / "pd_tmh_vp9_tractor.webm"]
    with Library(tmp_path / "lib", create=True) as lib:
        report = index_paths(files, lib, create_encoder(), "content", jobs=2)
        assert [p.name for p in report.indexed] and sorted(p.name for p in report.indexed) == sorted(
            ["cc0_mdn_stream_of_water.mp4", "pd_tmh_vp9_tractor.webm"])
        assert report.failed == [(doomed, "the worker process analysing it died (killed by SIGKILL), 2 times")]
        assert lib.catalog.integrity_ok() and lib.catalog.stats()["videos"] == 2
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_between_files_is_replaced(archive, tmp_path, monkeypatch):
    """A worker killed while idle (the out-of-memory killer's pick, say), before its next file is
    sent: the file goes to a fresh worker, nothing fails."""
    import multiprocessing

    from rereel.library import workers

    take, killed = workers._Run.take, []

    def take_then_kill(self, msg, w, all_workers):
        take(self, msg, w, all_workers)
        if msg[0] == "done" and not killed:
            killed.append(w.process.pid)
            os.kill(w.process.pid, signal.SIGKILL)
            w.process.join()  # dead before the loop hands it the next file

    monkeypatch.setattr(workers._Run, "take", take_then_kill)
    names = ["cc0_mdn_stream_of_water.mp4", "pd_tmh_vp9_tractor.webm", "ccby_intel_gifpreview_person_bicycle_car_detection.mp4"]
    with Library(tmp_path / "lib", create=True) as lib:
        report = index_paths([archive / n for n in names], lib, create_encoder(), "content", jobs=2)
        assert killed and report.failed == [] and sorted(p.name for p in report.indexed) == sorted(names)
        assert lib.catalog.integrity_ok()
    assert multiprocessing.active_children() == []


def _marked(mark: str) -> list[int]:
    """Pids of live processes whose environment holds `mark`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if mark.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_stopping_an_index_run_stops_its_workers(archive, tmp_path, how):
    """Ctrl-C at a terminal (SIGINT to the whole process group) while the workers start up, or
    kill -9 of the run once it has written a video: the library keeps only whole videos, no
    worker goes on analysing, and no worker prints a traceback."""
    lib = tmp_path / "lib"
    mark = f"REREEL_TEST_RUN={os.getpid()}-{how.replace(' ', '')}"
    env = {**os.environ, "PYTHONPATH": str(SRC), mark.split("=")[0]: mark.split("=")[1]}
    proc = subprocess.Popen([sys.executable, "-m", "rereel", "index", str(archive), "--library", str(lib)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                            start_new_session=True,  # a process group of its own, as a terminal's job
                            preexec_fn=sigint_as_at_a_terminal)
    db = lib / "catalog.sqlite"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if how == "ctrl-c" and set(_marked(mark)) - {proc.pid}:  # a worker exists: it is importing
                os.killpg(proc.pid, signal.SIGINT)
                break
            if how == "kill -9" and _videos_committed(db) >= 1:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        else:
            pytest.fail("the run never reached the point to stop it at")
    finally:
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == "ctrl-c" else -signal.SIGKILL), stderr
    assert "Traceback" not in stderr, stderr
    time.sleep(0.5)  # the kernel's SIGKILL to orphaned workers (PR_SET_PDEATHSIG) is immediate; reaping is not
    assert _marked(mark) == []
    with Library(lib) as opened:
        assert opened.catalog.integrity_ok() and opened.catalog.stats()["videos"] < 35


_MASK_PROBE = """
import multiprocessing as mp, signal, sys
from rereel.library.workers import _signals_held

def report(conn):
    conn.send(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, set())))

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    with _signals_held():
        p = ctx.Process(target=report, args=(theirs,))
        p.start()
    print(ours.recv())
    p.join()
"""


def test_the_first_worker_starts_with_ctrl_c_held_off(tmp_path):
    """The first worker process of a run starts with SIGINT and SIGTERM blocked, as every later
    one does: multiprocessing's resource tracker, started with the first, unblocked them in the
    starting thread, so a Ctrl-C while that worker imported printed a fatal error and a
    traceback (test_stopping_an_index_run_stops_its_workers failed so, now and then)."""
    script = tmp_path / "probe.py"
    script.write_text(_MASK_PROBE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, check=True).stdout
    assert json.loads(out) == sorted([int(signal.SIGINT), int(signal.SIGTERM)]), out


# -- shots and their sampled frames; reembed -------------------------------------------------


def test_a_shot_without_a_sample_of_its_own_is_merged_not_given_a_neighbours():
    from rereel.library.indexer import assign_samples
    from rereel.shots.detector import Shot

    samples = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25])  # 4 per second over 1.5 s (30 fps)
    shots = [Shot(0, 0, 4, 0.0, 4 / 30), Shot(1, 4, 20, 4 / 30, 20 / 30), Shot(2, 20, 24, 20 / 30, 24 / 30),
             Shot(3, 24, 42, 0.8, 1.4), Shot(4, 42, 45, 1.4, 1.5)]
    got = assign_samples(shots, samples)
    # shot 2 (0.67-0.8 s) holds the 0.75 sample; shot 4 (1.4-1.5 s) holds none and joins shot 3.
    assert [(s.index, s.start_frame, s.end_frame) for s, _ in got] == [(0, 0, 4), (1, 4, 20), (2, 20, 24), (3, 24, 45)]
    assert [list(i) for _, i in got] == [[0], [1, 2], [3], [4, 5]]
    first_empty = [Shot(0, 0, 2, 0.0, 0.2), Shot(1, 2, 45, 0.2, 1.5)]
    samples = np.array([0.25, 0.5])
    got = assign_samples(first_empty, samples)
    assert [(s.index, s.start_frame, s.end_frame, s.start, s.end) for s, _ in got] == [(0, 0, 45, 0.0, 1.5)]


def test_archive_frames_are_sampled_by_change_between_floor_and_ceiling():
    from rereel.library.indexer import CHANGE, MIN_SAMPLE_FPS, SAMPLE_FPS, _Sampler

    times = np.arange(250) / 25  # 10 s at 25 fps
    still = np.full((144, 256, 3), 90, np.uint8)
    def moving(i):  # 5 levels brighter every frame (wrapping): never still
        return np.full((144, 256, 3), 5 * i % 256, np.uint8)

    def taken(sampler, frame_at):
        return np.array([t for i, t in enumerate(times) if sampler.take(t, frame_at(i))])

    # A still picture: the floor, one frame a second, from the first frame.
    assert np.allclose(taken(_Sampler(SAMPLE_FPS, MIN_SAMPLE_FPS, CHANGE), lambda i: still), np.arange(10))
    # A picture that never stops changing: the ceiling, 4 a second (the frame at or after each 0.25 s).
    every_quarter = np.ceil(np.arange(40) / 4 * 25 - 1e-6) / 25
    assert np.allclose(taken(_Sampler(SAMPLE_FPS, MIN_SAMPLE_FPS, CHANGE), moving), every_quarter)
    # A cut in a still shot (to a picture 40 levels brighter) is sampled on its first frame.
    cut = taken(_Sampler(SAMPLE_FPS, MIN_SAMPLE_FPS, CHANGE), lambda i: still if i < 113 else still + 40)
    assert 113 / 25 in cut and len(cut) == 11
    # Without a floor the rate is fixed, whatever the picture does (targets).
    assert np.allclose(taken(_Sampler(SAMPLE_FPS, None, CHANGE), lambda i: still), every_quarter)


class _CutNearTheEnd:
    """A detector that cuts 3 frames before the end: a shot shorter than the sampling step."""

    name = "cut-near-end"
    frame_size = (64, 36)

    def __init__(self, fps):
        self.n = 0

    def push(self, index, time, rgb):
        self.n = index + 1

    def finish(self):
        return [self.n // 2, self.n - 3]


def test_reembed_after_a_tiny_shot(archive, tmp_path, monkeypatch):
    import rereel.library.indexer as indexer

    monkeypatch.setattr(indexer, "create_detector", lambda name, fps: _CutNearTheEnd(fps))
    clip = archive / TWO[0]
    frames = sum(1 for _ in decode_frames(clip))  # independent count of the clip's frames
    with Library(tmp_path / "lib", create=True) as lib:
        index_paths([clip], lib, create_encoder("test-pixels"), "content")
        shots = lib.catalog.shots()
        assert [(s["start_frame"], s["end_frame"]) for s in shots] == [(0, frames // 2), (frames // 2, frames)]
        rows = lib.catalog.db.execute("SELECT frame_index FROM frames").fetchall()
        assert len(rows) == len({r[0] for r in rows})  # no frame listed under two shots
        assert reembed_library(lib, create_encoder("effnet-lite0"), ProgressSink()) == []
        assert lib.vectors("frames").dim == 1280


def test_reembed_mends_a_library_where_two_shots_share_a_frame(archive, tmp_path):
    """Libraries indexed before the fix list one sampled frame under two shots."""
    with Library(tmp_path / "lib", create=True) as lib:
        index_paths([archive / "pd_pixwarp_nasa_we_are_going.mov"], lib, create_encoder("test-pixels"), "content")
        db = lib.catalog.db
        a, b = db.execute("SELECT id FROM shots ORDER BY id LIMIT 2").fetchall()
        f = db.execute("SELECT * FROM frames WHERE shot_id=? ORDER BY time DESC LIMIT 1", (a[0],)).fetchone()
        db.execute("INSERT INTO frames(shot_id, video_id, frame_index, time, embedding, grid, colour) VALUES (?,?,?,?,?,?,?)",
                   (b[0], f["video_id"], f["frame_index"], f["time"], f["embedding"], f["grid"], f["colour"]))
        assert reembed_library(lib, create_encoder("effnet-lite0"), ProgressSink()) == []
        emb = [np.frombuffer(r[0], np.float32) for r in
               db.execute("SELECT embedding FROM frames WHERE frame_index=?", (f["frame_index"],))]
        assert len(emb) == 2 and len(emb[0]) == 1280 and np.array_equal(emb[0], emb[1])
