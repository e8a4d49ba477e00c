"""The interface every shot detector implements (after PySceneDetect's `SceneDetector`), and
the registry that finds a detector by name (after the encoders' registry, itself after timm's
`create_model`).

A detector is fed each decoded frame once, from the same decode pass that feeds the encoder
and the thumbnails, at the small size it asks for, and tells at the end where shots begin.

A new detector is one file in `rereel/shots/`: a `ShotDetector` subclass decorated with
`@register_detector("name")`. The registry imports the package's modules the first time a
detector is looked up, so nothing is imported at `rereel --help`; heavy pieces (torch, the
TransNetV2 weights) load in a detector's constructor, only when that detector is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from rereel.errors import RereelError


@dataclass(frozen=True)
class Shot:
    index: int  # position in the video, from 0
    start_frame: int
    end_frame: int  # exclusive
    start: float  # seconds, presentation time of the first frame
    end: float  # seconds, presentation time just after the last frame

    @property
    def duration(self) -> float:
        return self.end - self.start


class ShotDetector(ABC):
    """Finds the frames where new shots begin."""

    name: str = ""
    frame_size: tuple[int, int] = (256, 144)  # (width, height) of the RGB frames `push` wants

    def __init__(self, fps: float):
        self.fps = fps or 25.0

    @classmethod
    def prepare(cls, backend: str | None = None) -> None:
        """Make now what every instance needs and would otherwise make at first use (an export
        of a network, for the workers' `backend`): the local indexer calls it before its worker
        processes start, so that they do not each make it at once."""

    @abstractmethod
    def push(self, index: int, time: float, rgb: np.ndarray) -> None:
        """Feed frame `index` (sequential from 0), shown at `time` seconds."""

    @abstractmethod
    def finish(self) -> list[int]:
        """After the last frame: sorted indices of the first frames of shots 2, 3, ..."""


def shots_from_cuts(cuts: list[int], times: list[float], end_time: float) -> list[Shot]:
    """Turn cut frame indices into Shots, using each frame's own time (VFR-safe)."""
    n = len(times)
    bounds = [0] + [c for c in sorted(set(cuts)) if 0 < c < n] + [n]
    shots = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        end = times[b] if b < n else end_time
        shots.append(Shot(i, a, b, times[a], end))
    return shots


def merge_cuts(cuts: list[int], min_gap: int) -> list[int]:
    """Sorted, unique cuts no closer than `min_gap` frames (the earlier of two close ones wins)."""
    merged: list[int] = []
    for c in sorted(set(cuts)):
        if c <= 0:
            continue
        if merged and c - merged[-1] < min_gap:
            continue
        merged.append(c)
    return merged


_REGISTRY: dict[str, type[ShotDetector]] = {}


def register_detector(name: str):
    """Class decorator: make a ShotDetector available to `create_detector(name)`."""

    def wrap(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return wrap


def list_detectors() -> tuple[str, ...]:
    """Registered detector names, in registration order."""
    _load_builtin()
    return tuple(_REGISTRY)


def create_detector(name: str, fps: float) -> ShotDetector:
    """A fresh detector for one video; `name` is one of `list_detectors()`."""
    return detector_class(name)(fps)


def detector_class(name: str) -> type[ShotDetector]:
    """The detector registered as `name`."""
    _load_builtin()
    if name not in _REGISTRY:
        raise RereelError(f"unknown shot detector {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


_loaded = False


def _load_builtin() -> None:
    # Every module of the package, imported on first use: a detector file registers itself.
    global _loaded
    if _loaded:
        return
    import rereel.shots as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _loaded = True
