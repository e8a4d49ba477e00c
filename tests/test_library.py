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

import numpy as np
import pytest
from PIL import Image

from rereel.encoders import Encoder, Features, colour_signature, create_encoder, register
from rereel.errors import RereelError
from rereel.library import Library, ProgressSink, index_paths
from rereel.library.reembed import reembed_library
from rereel.media import decode_frames

SMALL = [
    "cc0_mdn_stream_of_water.mp4",
    "pd_chaplin_excerpt.mp4",
    "pd_pixwarp_nasa_we_are_going.mov",
    "ccby_intel_asl_sign_book.mkv",
    "pd_pixwarp_nasa_cyclone_freddy_vertical.mp4",
    "cc0_mdn_flower_bloom.mp4",
    "pd_tmh_vp9_tractor.webm",
]


def rereel(*args, check=False, timeout=600):
    """Run the real command line in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "rereel", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)
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
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as con:
                        if con.execute("SELECT COUNT(*) FROM videos").fetchone()[0] >= 1:
                            break
                except sqlite3.OperationalError:
                    pass
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
