"""Remakes as OpenTimelineIO timelines: what editors exchange, and what `rereel render` reads.

Structure of a remake timeline (rate = the target's frame rate):
  V1 "remake"  one clip per target shot: the chosen archive segment (ExternalReference with
               its source range), or a Gap where the target is black. Each clip's metadata
               "rereel" holds the target shot index, frames, score and the K suggestions.
  V2 "target"  the target video, whole, as a reference.
  A1 "target audio"  the target's soundtrack, whole.
Timeline metadata "rereel" names the target, its size and rate, the library and encoder.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError

KEY = "rereel"


def _ref(path: str, duration_s: float, rate: float) -> otio.schema.ExternalReference:
    return otio.schema.ExternalReference(
        target_url=Path(path).resolve().as_uri(),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(round(duration_s * rate), rate)
        ),
    )


def build_timeline(name: str, target: dict, matches, meta: dict) -> otio.schema.Timeline:
    """`target`: path, fps, width, height, duration, frames, has_audio. `matches`: ShotMatch list."""
    rate = float(target["fps"])
    tl = otio.schema.Timeline(name=name)
    tl.global_start_time = otio.opentime.RationalTime(0, rate)
    tl.metadata[KEY] = {"target": dict(target), **meta}
    video = otio.schema.Track(name="remake", kind=otio.schema.TrackKind.Video)
    for m in matches:
        frames = m.end_frame - m.start_frame
        info = {
            "target_shot": m.index, "target_start_frame": m.start_frame, "target_end_frame": m.end_frame,
            "target_start": m.start, "target_end": m.end, "black": m.black,
            "score": round(m.chosen.score, 4) if m.chosen else None,
            "suggestions": [c.to_dict() for c in m.suggestions],
            "chosen": 0 if m.chosen else None,
        }
        if m.chosen is None:
            gap = otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)))
            gap.name = f"shot {m.index} (black)"
            gap.metadata[KEY] = info
            video.append(gap)
            continue
        c = m.chosen
        clip = otio.schema.Clip(name=f"shot {m.index}: {c.name}")
        clip.media_reference = _ref(c.path, c.video_duration, rate)
        clip.source_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(round(c.placement.start * rate), rate), otio.opentime.RationalTime(frames, rate)
        )
        clip.metadata[KEY] = info | {"shot_id": c.shot_id, "path": c.path, "start": c.placement.start}
        video.append(clip)
    ref_track = otio.schema.Track(name="target", kind=otio.schema.TrackKind.Video)
    whole = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(int(target["frames"]), rate))
    tclip = otio.schema.Clip(name=Path(target["path"]).name, media_reference=_ref(target["path"], target["duration"], rate),
                             source_range=whole)
    ref_track.append(tclip)
    tl.tracks.append(video)
    tl.tracks.append(ref_track)
    if target.get("has_audio"):
        audio = otio.schema.Track(name="target audio", kind=otio.schema.TrackKind.Audio)
        audio.append(otio.schema.Clip(name=Path(target["path"]).name,
                                      media_reference=_ref(target["path"], target["duration"], rate), source_range=whole))
        tl.tracks.append(audio)
    return tl


def choose_suggestion(tl: otio.schema.Timeline, shot: int, suggestion: int) -> None:
    """Swap suggestion number `suggestion` (0 = best) into target shot `shot`."""
    track = remake_track(tl)
    rate = float(tl.metadata[KEY]["target"]["fps"])
    for i, item in enumerate(track):
        info = item.metadata.get(KEY, {})
        if info.get("target_shot") != shot:
            continue
        sugg = info.get("suggestions") or []
        if not 0 <= suggestion < len(sugg):
            raise RereelError(f"shot {shot} has {len(sugg)} suggestions; there is no number {suggestion}")
        s = sugg[suggestion]
        frames = info["target_end_frame"] - info["target_start_frame"]
        clip = otio.schema.Clip(name=f"shot {shot}: {Path(s['path']).name}")
        clip.media_reference = _ref(s["path"], s.get("video_duration", s["end"]), rate)
        clip.source_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(round(s["start"] * rate), rate), otio.opentime.RationalTime(frames, rate))
        clip.metadata[KEY] = dict(info) | {"chosen": suggestion, "score": s["score"], "shot_id": s["shot_id"],
                                           "path": s["path"], "start": s["start"]}
        track[i] = clip
        return
    raise RereelError(f"the timeline has no target shot {shot}")


def remake_track(tl: otio.schema.Timeline) -> otio.schema.Track:
    for track in tl.video_tracks():
        if track.name == "remake":
            return track
    return tl.video_tracks()[0]


def write_timeline(tl: otio.schema.Timeline, path: Path) -> Path:
    """Write .otio (or .edl / .xml through the OTIO adapters), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread: the web app may write the same timeline from two threads.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    adapter = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}.get(path.suffix.lower())
    if adapter is None:
        raise RereelError(f"{path}: timeline files end in .otio, .edl (CMX 3600) or .xml (FCP XML)")
    try:
        if adapter == "cmx_3600":
            # EDLs hold one video track; the remake is the edit, the target stays in the .otio.
            edl = otio.schema.Timeline(name=tl.name)
            edl.tracks.append(remake_track(tl).deepcopy())
            otio.adapters.write_to_file(edl, str(tmp), adapter_name=adapter)
        else:
            otio.adapters.write_to_file(tl, str(tmp), adapter_name=adapter)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_timeline(path: Path) -> otio.schema.Timeline:
    path = Path(path)
    if not path.exists():
        raise RereelError(f"{path}: no such timeline file")
    try:
        tl = otio.adapters.read_from_file(str(path))
    except Exception as e:  # OTIO raises many kinds; the user needs the file and the reason
        raise RereelError(f"{path}: cannot read the timeline ({type(e).__name__}: {e})") from None
    if KEY not in tl.metadata or "target" not in tl.metadata[KEY]:
        raise RereelError(f"{path}: not a rereel remake timeline (no target in its metadata)")
    return tl


def media_path(ref) -> str:
    url = ref.target_url
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(url).path)
    return url
