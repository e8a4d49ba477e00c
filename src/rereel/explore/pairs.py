"""A remake timeline's target shot and the archive piece chosen for it, as two Footage."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.explore.footage import Footage
from rereel.timeline import KEY, media_path, read_timeline, shot_items


def pair_footage(spec: str) -> tuple[Footage, Footage]:
    """'remake.otio:3' -> (target shot 3, its archive match)."""
    path_text, sep, shot_text = spec.rpartition(":")
    if not sep or not shot_text.strip().isdigit():
        raise RereelError(f"--pair {spec!r}: write TIMELINE.otio:SHOT, e.g. remake.otio:3")
    shot = int(shot_text)
    tl = read_timeline(Path(path_text))
    target_path = Path(tl.metadata[KEY]["target"]["path"])
    shots = []
    for item in shot_items(tl):
        info = item.metadata.get(KEY, {})
        shots.append(info.get("target_shot"))
        if info.get("target_shot") != shot:
            continue
        target = Footage(target_path, float(info["target_start"]), float(info["target_end"]), target_path.name)
        if not isinstance(item, otio.schema.Clip) or isinstance(item.media_reference, otio.schema.MissingReference):
            raise RereelError(f"{path_text}: target shot {shot} is black in the remake; it has no archive match to pair")
        archive = Path(media_path(item.media_reference))
        start = item.source_range.start_time.to_seconds()
        end = start + item.source_range.duration.to_seconds()
        return target, Footage(archive, start, end, archive.name, info.get("shot_id"))
    known = ", ".join(str(s) for s in shots if s is not None)
    raise RereelError(f"{path_text}: no target shot {shot} (the timeline has shots {known})")
