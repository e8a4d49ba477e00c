"""Shared fixtures. Real footage comes from ../shared/media (or $REREEL_MEDIA).

A test that needs footage and cannot find it fails when CI is set (CI always has
../shared) and skips with the reason elsewhere, so a wrong path never turns the
suite into silent skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _media_root() -> Path:
    return Path(os.environ.get("REREEL_MEDIA", ROOT.parent / "shared" / "media")).resolve()


def require_media(*relative: str) -> Path:
    """The sample-footage folder (or a file in it); fail in CI, skip elsewhere, when missing."""
    root = _media_root()
    target = root.joinpath(*relative) if relative else root
    if not target.exists():
        msg = f"sample footage not found at {target} (set REREEL_MEDIA or put shared/ beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return target


def sigint_as_at_a_terminal() -> None:
    """A `preexec_fn` for a command a test will Ctrl-C: SIGINT at its default, as at a terminal.
    A suite started in the background by a shell (`make test &`) inherits it ignored, and the
    command would then not stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def require_module(name: str, why: str):
    """Import an optional module for a test; fail in CI (which installs the dev extras), skip elsewhere.

    pytest.importorskip would skip under CI too, and a suite of silent skips passes.
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        msg = f"{name} is not installed ({why}): {e}"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


def require_program(path: str, why: str) -> str:
    """Path of an external program (melt, chromium...); fail in CI, skip elsewhere, when missing."""
    import shutil

    found = shutil.which(path)
    if found is None:
        msg = f"{path} not found ({why}); `make test` installs it"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return found


def pytest_configure(config):
    """One cache of target analyses for the whole run, shared by the xdist workers (started after
    this, they inherit it) and the `rereel` subprocesses: a trailer that several tests remake is
    analysed once a run, never from a cache an earlier run's code left."""
    import shutil
    import tempfile

    if hasattr(config, "workerinput"):  # an xdist worker: the controller made it
        return
    path = tempfile.mkdtemp(prefix="rereel-analyses-")
    os.environ["REREEL_ANALYSIS_CACHE"] = path
    config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))


# The longest files (minutes under two workers), started first so that neither worker is left
# with one of them at the end while the other waits (`make test` keeps this order for xdist,
# which would otherwise deal out files by their number of tests).
LONGEST_FIRST = ["test_remake.py", "test_web_api.py", "test_see.py", "test_autoencoder.py", "test_library.py",
                 "test_explore.py", "test_target_cuts.py", "test_web_browser.py"]


def pytest_collection_modifyitems(items):
    """The Ray tests run first: ray.init forks its daemons with a Python preexec_fn, which can
    deadlock in a process that already runs threads (later tests leave servers and thread pools).
    Then the longest files; the rest keep their order (the sort is stable)."""
    def rank(item) -> int:
        name = item.path.name
        if name == "test_ray.py":
            return -1
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


# Under xdist each worker has one core's worth of the machine: a second PyTorch thread per
# worker only spins against the other worker (a 15 s training took 86 s that way). rereel's
# subprocesses inherit the setting.
TORCH_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def media() -> Path:
    return require_media()


@pytest.fixture(scope="session")
def archive(media) -> Path:
    return media / "archive"


WEB_CLIPS = [
    "cc0_mdn_flower_bloom.mp4",
    "ccby_pixwarp_peony_timelapse.avi",
    "cc0_mdn_stream_of_water.mp4",
    "ccby_zwm_tears_of_steel_10s.mp4",
    "cc0_mdn_chroma_keying_face_closeup.mp4",  # the browser tests' fake webcam plays this clip
]


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder `build(folder)` fills once a run, shared by the xdist workers (each would build
    its own session fixture): the first to come builds it under a lock, the others wait and
    reuse it. Callers must not change what is in it."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            import shutil

            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def web_library(archive, tmp_path_factory) -> Path:
    """A small library of real clips for the web app's tests (API, browser, mirror). Shared by
    the workers: tests that add footage copy it first."""
    import subprocess
    import sys

    def build(folder: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "rereel", "index", *[archive / n for n in WEB_CLIPS],
                               "--library", folder / "library"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr

    return built_once(tmp_path_factory, "web", build) / "library"


@pytest.fixture(scope="session")
def see_models(archive, tmp_path_factory) -> Path:
    """A folder holding one small learning-to-see model, "flowers" (20 steps: it runs, it is not good)."""
    import torch

    from rereel.learn import see
    from rereel.learn.frames import sample_corpus

    torch.set_num_threads(TORCH_THREADS)
    models = tmp_path_factory.mktemp("models")
    flower = archive / "cc0_mdn_flower_bloom.mp4"
    frames = sample_corpus([flower], 84, max_frames=16)
    cfg = see.SeeConfig(size=64, steps=20, batch=2, base=8, sample_every=0, checkpoint_every=0)
    see.train([flower], models / "flowers", cfg, device="cpu", progress=False, frames=frames)
    return models
