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


def pytest_collection_modifyitems(items):
    """The Ray tests run first: ray.init forks its daemons with a Python preexec_fn, which can
    deadlock in a process that already runs threads (later tests leave servers and thread pools)."""
    items.sort(key=lambda item: item.path.name != "test_ray.py")  # stable: the rest keep their order


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


@pytest.fixture(scope="session")
def web_library(archive, tmp_path_factory) -> Path:
    """A small library of real clips for the web app's tests (API, browser, mirror)."""
    import subprocess
    import sys

    lib = tmp_path_factory.mktemp("web") / "library"
    proc = subprocess.run([sys.executable, "-m", "rereel", "index", *[archive / n for n in WEB_CLIPS], "--library", lib],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return lib


@pytest.fixture(scope="session")
def see_models(archive, tmp_path_factory) -> Path:
    """A folder holding one small learning-to-see model, "flowers" (20 steps: it runs, it is not good)."""
    import torch

    from rereel.learn import see
    from rereel.learn.frames import sample_corpus

    torch.set_num_threads(2)
    models = tmp_path_factory.mktemp("models")
    flower = archive / "cc0_mdn_flower_bloom.mp4"
    frames = sample_corpus([flower], 84, max_frames=16)
    cfg = see.SeeConfig(size=64, steps=20, batch=2, base=8, sample_every=0, checkpoint_every=0)
    see.train([flower], models / "flowers", cfg, device="cpu", progress=False, frames=frames)
    return models
