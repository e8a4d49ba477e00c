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


@pytest.fixture(scope="session")
def media() -> Path:
    return require_media()


@pytest.fixture(scope="session")
def archive(media) -> Path:
    return media / "archive"
