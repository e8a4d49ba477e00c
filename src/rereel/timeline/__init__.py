"""Remakes as OpenTimelineIO timelines: what editors exchange, and what `rereel render` reads.

Structure of a remake timeline (rate = the target's frame rate):
  V1 "remake"  per target shot: a clip of the chosen archive segment (ExternalReference with
               its source range), or a Gap where the target is black. A segment shorter than
               its target shot is followed by a hold clip: its last frame under an OTIO
               FreezeFrame effect (see layout.py for which frames a segment may fill). Each
               shot's first item has metadata "rereel": target shot index, frames, score and
               the K suggestions; a hold clip has only {"hold_of": index}.
  V2 "target"  the target video, whole, as a reference.
  A1 "target audio"  the target's soundtrack, whole.
Timeline metadata "rereel" names the target, its size and rate, the library and encoder.
Each archive reference records its media's frame rate (metadata "rereel": {"fps": ...}), which
the FCP XML export needs (export.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.timeline.layout import Layout, layout

KEY = "rereel"


def _ref(path: str, duration_s: float, rate: float, media_fps: float) -> otio.schema.ExternalReference:
    ref = otio.schema.ExternalReference(
        target_url=Path(path).resolve().as_uri(),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(round(duration_s * rate), rate)
        ),
    )
    ref.metadata[KEY] = {"fps": float(media_fps)}
    return ref


def _range(first: int, frames: int, rate: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(frames, rate))


def shot_bounds(library: str | None, shot_id: int | None) -> tuple[float, float] | None:
    """The archive shot's [start, end) seconds from the library's catalog, if it is there."""
    if not library or shot_id is None:
        return None
    path = Path(library) / "catalog.sqlite"
    if not path.exists():
        return None  # a moved library: layout() then treats the segment's ends as cuts
    from rereel.library.catalog import Catalog

    cat = Catalog(path)
    try:
        row = cat.shot(int(shot_id))
    finally:
        cat.close()
    return (float(row["start"]), float(row["end"])) if row is not None else None


def segment_items(index: int, name: str, path: str, start: float, end: float, media_fps: float,
                  video_duration: float, rate: float, frames: int, info: dict,
                  bounds: tuple[float, float] | None) -> list[otio.schema.Clip]:
    """The clip for one target shot's archive segment, plus a hold clip when it is short."""
    lay: Layout = layout(start, end, media_fps, rate, frames, *(bounds or (None, None)))
    clip = otio.schema.Clip(name=f"shot {index}: {name}", source_range=_range(lay.first, lay.frames, rate))
    clip.media_reference = _ref(path, video_duration, rate, media_fps)
    clip.metadata[KEY] = info | {"path": path, "start": start, "end": end, "hold": lay.hold}
    if not lay.hold:
        return [clip]
    # FreezeFrame shows the source range's first frame for the clip's whole duration: OTIO's
    # meaning, written by the MLT adapter as a "hold" producer and by the EDL as M2 speed 0.
    hold = otio.schema.Clip(name=f"shot {index}: {name} (hold)", source_range=_range(lay.last, lay.hold, rate))
    hold.media_reference = _ref(path, video_duration, rate, media_fps)
    hold.effects.append(otio.schema.FreezeFrame())
    hold.metadata[KEY] = {"hold_of": index}
    return [clip, hold]


def is_freeze(item) -> bool:
    """Whether a clip shows one frame held: OTIO's FreezeFrame is a LinearTimeWarp of speed 0, and
    an editor may write either. What render, export and credits go by."""
    return any(isinstance(e, otio.schema.LinearTimeWarp) and e.time_scalar == 0 for e in item.effects)


def is_hold(item) -> bool:
    """Whether an item is the hold rereel puts after a short clip: it belongs to that clip's
    target shot (see shot_items)."""
    return "hold_of" in item.metadata.get(KEY, {})


def shot_items(tl: otio.schema.Timeline) -> list:
    """One item per target shot (a clip or a gap), without the hold clips that follow short ones."""
    return [item for item in remake_track(tl) if not is_hold(item)]


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
            gap = otio.schema.Gap(source_range=_range(0, frames, rate))
            gap.name = f"shot {m.index} (black)"
            gap.metadata[KEY] = info
            video.append(gap)
            continue
        c = m.chosen
        for item in segment_items(m.index, c.name, c.path, c.placement.start, c.placement.end, c.fps,
                                  c.video_duration, rate, frames, info | {"shot_id": c.shot_id},
                                  shot_bounds(meta.get("library"), c.shot_id)):
            video.append(item)
    ref_track = otio.schema.Track(name="target", kind=otio.schema.TrackKind.Video)
    whole = _range(0, int(target["frames"]), rate)
    tname = Path(target["path"]).name
    ref_track.append(otio.schema.Clip(name=tname, media_reference=_ref(target["path"], target["duration"], rate, rate),
                                      source_range=whole))
    tl.tracks.append(video)
    tl.tracks.append(ref_track)
    if target.get("has_audio"):
        audio = otio.schema.Track(name="target audio", kind=otio.schema.TrackKind.Audio)
        audio.append(otio.schema.Clip(name=tname, media_reference=_ref(target["path"], target["duration"], rate, rate),
                                      source_range=whole))
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
        fps = s.get("fps")
        if not fps:  # suggestions do not carry their media's rate; the file does
            from rereel.media import probe

            fps = probe(s["path"]).fps
        items = segment_items(shot, Path(s["path"]).name, s["path"], s["start"], s["end"], fps,
                              s.get("video_duration", s["end"]), rate, frames,
                              dict(info) | {"chosen": suggestion, "score": s["score"], "shot_id": s["shot_id"]},
                              shot_bounds(tl.metadata[KEY].get("library"), s["shot_id"]))
        while i + 1 < len(track) and is_hold(track[i + 1]):
            del track[i + 1]
        track[i] = items[0]
        for k, extra in enumerate(items[1:], start=1):
            track.insert(i + k, extra)
        return
    raise RereelError(f"the timeline has no target shot {shot}")


def remake_track(tl: otio.schema.Timeline) -> otio.schema.Track:
    for track in tl.video_tracks():
        if track.name == "remake":
            return track
    return tl.video_tracks()[0]


def write_timeline(tl: otio.schema.Timeline, path: Path) -> Path:
    """Write .otio (or .edl / .xml through the OTIO adapters), atomically."""
    from rereel.timeline.export import edl_timeline, fcp_timeline

    path = Path(path)
    adapter = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}.get(path.suffix.lower())
    if adapter is None:
        raise RereelError(f"{path}: timeline files end in .otio, .edl (CMX 3600) or .xml (FCP XML)")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread: the web app may write the same timeline from two threads.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if adapter == "cmx_3600":
            otio.adapters.write_to_file(edl_timeline(tl), str(tmp), adapter_name=adapter)
        elif adapter == "fcp_xml":
            tmp.write_text(fcp_timeline(tl))
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
