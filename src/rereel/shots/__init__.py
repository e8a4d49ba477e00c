"""Shot detectors, one per file, behind the `ShotDetector` interface; chosen by name."""

from __future__ import annotations

from rereel.errors import RereelError
from rereel.shots.detector import Shot, ShotDetector, merge_cuts, shots_from_cuts

DETECTORS = ("content", "transnetv2", "target")
DEFAULT_DETECTOR = "content"  # for archives: fast on hours of footage
TARGET_DETECTOR = "target"  # for remake targets: short, so worth both detectors (shots/target.py)


def create_detector(name: str, fps: float) -> ShotDetector:
    """A fresh detector for one video; `name` is one of DETECTORS."""
    if name == "content":
        from rereel.shots.content import ContentFadeDetector

        return ContentFadeDetector(fps)
    if name == "transnetv2":
        from rereel.shots.transnet import TransNetV2Detector

        return TransNetV2Detector(fps)
    if name == "target":
        from rereel.shots.target import TargetDetector

        return TargetDetector(fps)
    raise RereelError(f"unknown shot detector {name!r}; known: {', '.join(DETECTORS)}")


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "TARGET_DETECTOR", "Shot", "ShotDetector", "create_detector", "merge_cuts", "shots_from_cuts"]
