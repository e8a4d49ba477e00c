"""`rereel index --engine ray`: the Ray engine makes the local engine's catalog, resumes after
its driver is killed, names a bad file, and analyses again a video whose worker was killed.

One local Ray (2 CPUs) serves the whole module: starting Ray costs seconds. The encoder that
matters (effnet-lite0) runs in the equal-catalogs test; the others use a tiny pixel encoder,
shipped to the workers by value, so that their actors start in a moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_media, require_module
from rereel.encoders import Encoder, Features, colour_signature, create_encoder
from rereel.library import Library, index_paths

EQUAL = ["cc0_mdn_stream_of_water.mp4", "ccby_zwm_tears_of_steel_10s.mp4"]  # 13 s, one of them cut
SMALL = ["cc0_mdn_stream_of_water.mp4", "ccby_intel_gifpreview_person_bicycle_car_detection.mp4",
         "pd_pixwarp_roundhay_garden_scene_1888.m4v"]


class Pixels(Encoder):
    """4x4 colour thumbnails: deterministic and loaded at once. `kill_marker`: the first actor
    to embed a frame creates the file and kills its own process (SIGKILL, as a lost node)."""

    name, version, dim, input_size = "test-ray-pixels", "1", 48, (32, 32)

    def __init__(self, kill_marker: str | None = None, delay: float = 0.0):
        self.kill_marker, self.delay = kill_marker, delay

    def embed(self, frames: np.ndarray) -> Features:
        if self.kill_marker:
            try:
                os.close(os.open(self.kill_marker, os.O_CREAT | os.O_EXCL))
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass  # killed once already: this is the retry
        time.sleep(self.delay)
        n = len(frames)
        small = frames.reshape(n, 4, 8, 4, 8, 3).mean(axis=(2, 4)).reshape(n, -1).astype(np.float32)
        small /= np.linalg.norm(small, axis=1, keepdims=True) + 1e-8
        return Features(small, small.astype(np.float16), colour_signature(frames))


def pixels(kill_marker=None, delay=0.0):
    return lambda: Pixels(kill_marker, delay)


@pytest.fixture(scope="module")
def ray_session():
    ray = require_module("ray", "the Ray engine; pip install '.[ray]'")
    from ray import cloudpickle

    from rereel.library.ray_engine import connect

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    # ray.init forks its daemons with a Python preexec_fn, which can deadlock in a process that
    # already runs threads: conftest runs this file first, before the suite's servers and pools.
    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def catalog_of(lib: Library) -> dict:
    """fingerprint -> (name, shot boundaries, shot vectors, frames per shot)."""
    out = {}
    for v in lib.catalog.videos():
        shots = lib.catalog.shots(v["id"])
        vecs = {r[0]: np.frombuffer(r[1], np.float32) for r in
                lib.catalog.db.execute("SELECT id, embedding FROM shots WHERE video_id=?", (v["id"],))}
        frames = [lib.catalog.db.execute("SELECT COUNT(*) FROM frames WHERE shot_id=?", (s["id"],)).fetchone()[0]
                  for s in shots]
        out[v["fingerprint"]] = (v["name"], [(s["start_frame"], s["end_frame"]) for s in shots],
                                 np.stack([vecs[s["id"]] for s in shots]), frames)
    return out


def test_ray_and_local_engines_make_the_same_catalog_and_name_a_bad_file(ray_session, archive, tmp_path):
    from rereel.library.ray_engine import index_paths_ray

    clips = [archive / n for n in EQUAL]
    bad = require_media("odd", "audio_only_apollo15_opus.mp4")
    truncated = tmp_path / "truncated.mp4"  # the head of a real file: a header, then nothing
    truncated.write_bytes((archive / EQUAL[1]).read_bytes()[:3000])
    with Library(tmp_path / "local", create=True) as local:
        report = index_paths(clips, local, create_encoder("effnet-lite0"), "content")
        assert report.indexed == clips
        expected = catalog_of(local)
    with Library(tmp_path / "ray", create=True) as lib:
        report = index_paths_ray([clips[0], bad, clips[1], truncated], lib, "effnet-lite0", workers=2)
        assert sorted(report.indexed) == sorted(clips)
        assert report.timings["threads_per_worker"] == 1  # each actor keeps to its one CPU
        failed = dict(report.failed)
        assert set(failed) == {bad, truncated}
        assert "audio only" in failed[bad]
        got = catalog_of(lib)
        assert lib.catalog.integrity_ok()
    assert got.keys() == expected.keys()
    assert sum(len(e[1]) for e in expected.values()) > len(expected)  # a clip with cuts: boundaries compared
    for fp, (name, bounds, vecs, frames) in expected.items():
        assert got[fp][0] == name and got[fp][1] == bounds and got[fp][3] == frames
        cos = np.sum(got[fp][2] * vecs, axis=1) / np.linalg.norm(got[fp][2], axis=1) / np.linalg.norm(vecs, axis=1)
        assert cos.min() >= 0.999, (name, cos)


def test_a_worker_killed_mid_video_is_analysed_again(ray_session, archive, tmp_path):
    from rereel.library.ray_engine import index_paths_ray

    clips = [archive / n for n in SMALL]
    marker = tmp_path / "killed"
    with Library(tmp_path / "ray", create=True) as lib:
        report = index_paths_ray(clips, lib, encoder_factory=pixels(str(marker)), workers=1)
        assert marker.exists()  # a worker did die mid-video
        assert sorted(report.indexed) == sorted(clips) and not report.failed
        assert len(report.retried) == 1 and report.retried[0] in clips
        got = catalog_of(lib)
    with Library(tmp_path / "local", create=True) as local:
        index_paths(clips, local, Pixels(), "content")
        expected = catalog_of(local)
    assert {fp: v[1] for fp, v in got.items()} == {fp: v[1] for fp, v in expected.items()}  # each once, whole
    for fp in expected:
        assert np.allclose(got[fp][2], expected[fp][2], atol=1e-5)


def test_resume_after_the_driver_is_killed(ray_session, archive, tmp_path):
    from rereel.library.ray_engine import index_paths_ray

    clips = [archive / n for n in SMALL]
    lib_dir = tmp_path / "lib"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_ray
        from ray import cloudpickle
        cloudpickle.register_pickle_by_value(test_ray)
        from pathlib import Path
        from rereel.library import Library
        from rereel.library.ray_engine import index_paths_ray
        with Library({str(lib_dir)!r}, create=True) as lib:
            index_paths_ray([Path(p) for p in {[str(c) for c in clips]!r}], lib, address={ray_session.get_runtime_context().gcs_address!r},
                            encoder_factory=test_ray.pixels(delay=0.3), workers=1)
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and driver.poll() is None:
            if (lib_dir / "catalog.sqlite").exists():
                with Library(lib_dir) as lib:
                    if lib.catalog.stats()["videos"] >= 1:
                        break
            time.sleep(0.2)
        assert driver.poll() is None, driver.stdout.read().decode()[-2000:]  # still mid-batch
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        driver.kill()
        driver.stdout.close()
    with Library(lib_dir) as lib:
        assert lib.catalog.integrity_ok()
        before = {v["name"] for v in lib.catalog.videos()}
        assert 1 <= len(before) < len(clips)
        report = index_paths_ray(clips, lib, encoder_factory=pixels(), workers=1)
        assert {p.name for p in report.skipped} == before
        assert {p.name for p in report.indexed} == {c.name for c in clips} - before
        assert sorted(v["name"] for v in lib.catalog.videos()) == sorted(c.name for c in clips)


def test_a_cluster_that_does_not_answer_is_refused_at_once(archive, tmp_path):
    """`--ray-address` with nothing listening retried for minutes with no word from rereel, and
    left an empty library. (Needs Ray installed, not a session: it never gets that far.)"""
    import socket

    require_module("ray", "the Ray engine; pip install '.[ray]'")
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "rereel", "index", str(archive / "cc0_mdn_stream_of_water.mp4"),
                           "--library", str(tmp_path / "lib"), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert proc.returncode == 2 and time.monotonic() - t0 < 60, (proc.returncode, proc.stderr)
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}: nothing answers" in proc.stderr, proc.stderr
    assert not (tmp_path / "lib").exists()
