"""Shot detectors, one per file, behind the `ShotDetector` interface; chosen by name through a
registry (`shots/detector.py`): decorate a new detector's class with `@register_detector`."""

from __future__ import annotations

from rereel.shots.detector import Shot, ShotDetector, create_detector, list_detectors, merge_cuts, register_detector, shots_from_cuts

DEFAULT_DETECTOR = "content"  # for archives: fast on hours of footage
TARGET_DETECTOR = "target"  # for remake targets: short, so worth both detectors (shots/target.py)


def __getattr__(name: str):
    # DETECTORS is read from the registry when asked for, so importing `rereel.shots` stays
    # light: the detector modules (OpenCV, PySceneDetect) load only then.
    if name == "DETECTORS":
        return list_detectors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "TARGET_DETECTOR",
    "Shot",
    "ShotDetector",
    "create_detector",
    "list_detectors",
    "merge_cuts",
    "register_detector",
    "shots_from_cuts",
]
