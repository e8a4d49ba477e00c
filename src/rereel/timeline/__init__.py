"""Remakes as OpenTimelineIO timelines: what editors exchange, and what `rereel render` reads.

Structure of a remake timeline (rate = the target's frame rate):
  V1 "remake"  per target shot: a clip of the chosen archive segment (ExternalReference with
               its source range), or a Gap where the target is black. A segment shorter than
               its target shot is followed by a hold clip: its last frame under an OTIO
               FreezeFrame effect (see layout.py for which frames a segment may fill). Each
               shot's first item has metadata "rereel": target shot index, number and timecode,
               frames, score and the K suggestions; a hold clip has only {"hold_of": index}.
  V2 "target"  the target video, whole, as a reference.
  A1 "target audio"  the target's soundtrack, whole.
Timeline metadata "rereel" names the target, its size and rate, the library and encoder.

One numbering everywhere (CLI, page, OTIO, EDL): shot N is the N-th target shot in time order,
black ones included, from 1, labelled with the timecode of its start in the target at the
target's rate (HH:MM:SS:FF, non-drop); suggestions count from 1 (1 = the one the remake chose). Metadata keeps
`target_shot` (the detector's index) and `chosen` (from 0) for the code; `number` and
`timecode` are what a person reads, rewritten by `number_shots` whenever a timeline is built
or written, so an edited cut list is numbered afresh.
Each archive reference records its media's frame rate (metadata "rereel": {"fps": ...}), which
the FCP XML export needs (export.py), and its content fingerprint ("fingerprint"; the target's is
in the timeline's "target"), by which render refuses a file replaced under its name since.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.outputs import write_file
from rereel.timeline.layout import Layout, layout

KEY = "rereel"


def _ref(path: str, duration_s: float, rate: float, media_fps: float,
         fingerprint: str | None = None) -> otio.schema.ExternalReference:
    ref = otio.schema.ExternalReference(
        target_url=Path(path).resolve().as_uri(),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(round(duration_s * rate), rate)
        ),
    )
    ref.metadata[KEY] = {"fps": float(media_fps)} | ({"fingerprint": fingerprint} if fingerprint else {})
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


def timecode(frame: int, rate: float) -> str:
    """HH:MM:SS:FF, non-drop: how rereel labels frame `frame` of a target at `rate` (OTIO's
    to_timecode; 23.976 counts as 24, 29.97 as 30). Rates SMPTE has no timecode for (12.5,
    28.47) count at the nearest whole rate, the same way."""
    try:
        return otio.opentime.to_timecode(otio.opentime.RationalTime(frame, rate), rate, drop_frame=False)
    except ValueError:
        nominal = max(1, int(rate + 0.5))
        s, f = divmod(int(frame), nominal)
        return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def timecode_frame(text: str, rate: float) -> int | None:
    """The frame a timecode names at `rate` (the inverse of `timecode`), or None if `text` is not one."""
    parts = text.strip().replace(";", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    if ";" in text:  # drop-frame, as some editors write 29.97
        try:
            return round(otio.opentime.from_timecode(text.strip(), rate).value)
        except ValueError:
            return None
    h, m, s, f = (int(p) for p in parts)
    nominal = max(1, int(rate + 0.5))
    if m > 59 or s > 59 or f >= nominal:
        return None
    return ((h * 60 + m) * 60 + s) * nominal + f


@dataclass(frozen=True)
class Shot:
    """One target shot as a person names it."""

    number: int  # from 1, in time order, black shots included
    index: int  # `target_shot` in the metadata: the code's key
    first: int  # its first frame in the target
    frames: int
    timecode: str
    item: object  # its first item on the remake track (a Clip or a Gap)

    @property
    def info(self) -> dict:
        return self.item.metadata.get(KEY, {})

    @property
    def label(self) -> str:
        return f"shot {self.number} ({self.timecode})"


def shots(tl: otio.schema.Timeline) -> list[Shot]:
    """Every target shot in time order, numbered from 1; a hold clip counts with its shot."""
    rate = float(tl.metadata[KEY]["target"]["fps"])
    out: list[Shot] = []
    k = 0
    for item in remake_items(tl):
        n = round(item.source_range.duration.rescaled_to(rate).value)
        if is_hold(item) and out:
            last = out[-1]
            out[-1] = Shot(last.number, last.index, last.first, last.frames + n, last.timecode, last.item)
        else:
            info = item.metadata.get(KEY, {})
            out.append(Shot(len(out) + 1, info.get("target_shot", len(out)), k, n, timecode(k, rate), item))
        k += n
    return out


def number_shots(tl: otio.schema.Timeline) -> None:
    """Write each shot's `number` and `timecode` into its metadata and name its items after them."""
    numbers = {}
    for shot in shots(tl):
        shot.item.metadata[KEY] = dict(shot.info) | {"number": shot.number, "timecode": shot.timecode}
        numbers[shot.index] = shot.number
    for item in remake_items(tl):
        info = item.metadata.get(KEY, {})
        n = numbers.get(info.get("hold_of") if is_hold(item) else info.get("target_shot"))
        if n is None:
            continue
        if shows_file(item):
            item.name = f"shot {n}: {Path(media_path(item.media_reference)).name}" + (" (hold)" if is_hold(item) else "")
        else:
            item.name = f"shot {n} (black)"


def find_shot(tl: otio.schema.Timeline, ref: str | int, path: Path | str = "the timeline") -> Shot:
    """The shot a person means: its number (from 1; "#3" as the editor writes it) or any timecode
    inside it (HH:MM:SS:FF)."""
    all_shots = shots(tl)
    rate = float(tl.metadata[KEY]["target"]["fps"])
    text = str(ref).strip().removeprefix("#")
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= len(all_shots):
            raise RereelError(f"{path}: there is no shot {n}; shots are numbered 1 to {len(all_shots)}, in time order")
        return all_shots[n - 1]
    frame = timecode_frame(text, rate)
    if frame is None:
        raise RereelError(f"{path}: {text!r} is neither a shot number (1 to {len(all_shots)}) nor a timecode "
                          f"HH:MM:SS:FF at {rate:g} fps")
    for shot in all_shots:
        if shot.first <= frame < shot.first + shot.frames:
            return shot
    end = all_shots[-1].first + all_shots[-1].frames if all_shots else 0
    raise RereelError(f"{path}: {text} is past the end of the target (its last frame is {timecode(max(0, end - 1), rate)})")


def segment_items(index: int, name: str, path: str, start: float, end: float, media_fps: float,
                  video_duration: float, rate: float, frames: int, info: dict,
                  bounds: tuple[float, float] | None, fingerprint: str | None = None) -> list[otio.schema.Clip]:
    """The clip for one target shot's archive segment, plus a hold clip when it is short."""
    lay: Layout = layout(start, end, media_fps, rate, frames, *(bounds or (None, None)))
    clip = otio.schema.Clip(name=f"shot {index}: {name}", source_range=_range(lay.first, lay.frames, rate))
    clip.media_reference = _ref(path, video_duration, rate, media_fps, fingerprint)
    clip.metadata[KEY] = info | {"path": path, "start": start, "end": end, "hold": lay.hold}
    if not lay.hold:
        return [clip]
    # FreezeFrame shows the source range's first frame for the clip's whole duration: OTIO's
    # meaning, written by the MLT adapter as a "hold" producer and by the EDL as M2 speed 0.
    hold = otio.schema.Clip(name=f"shot {index}: {name} (hold)", source_range=_range(lay.last, lay.hold, rate))
    hold.media_reference = _ref(path, video_duration, rate, media_fps, fingerprint)
    hold.effects.append(otio.schema.FreezeFrame())
    hold.metadata[KEY] = {"hold_of": index}
    return [clip, hold]


def is_freeze(item) -> bool:
    """Whether a clip shows one frame held: OTIO's FreezeFrame is a LinearTimeWarp of speed 0, and
    an editor may write either. What render, export and credits go by."""
    return speed(item) == 0


def speed(item) -> float:
    """How fast a clip plays its media: 1, or an editor's speed change (OTIO LinearTimeWarps,
    multiplied; 0 holds a frame). The clip's place on the track is its source range's duration;
    it shows media from the range's start at this many seconds a second."""
    out = 1.0
    for e in getattr(item, "effects", ()):
        if isinstance(e, otio.schema.LinearTimeWarp):
            out *= float(e.time_scalar)
    return out


def remake_items(tl: otio.schema.Timeline) -> list:
    """The remake track's clips and gaps, in order: what fills its time. Transitions (an editor's
    dissolve) take no time of their own in OTIO; rereel cuts there (see `transitions`)."""
    return [item for item in remake_track(tl) if not isinstance(item, otio.schema.Transition)]


def transitions(tl: otio.schema.Timeline) -> int:
    """How many transitions (dissolves, wipes) the remake track holds: rendered and exported as cuts."""
    return sum(isinstance(item, otio.schema.Transition) for item in remake_track(tl))


def shows_file(item) -> bool:
    """Whether a remake-track item plays a media file: a clip with a file reference. A gap, a
    clip of a missing file or of no file (an editor's colour bars, a solid) is black."""
    return isinstance(item, otio.schema.Clip) and bool(getattr(item.media_reference, "target_url", None))


def is_hold(item) -> bool:
    """Whether an item is the hold rereel puts after a short clip: it belongs to that clip's
    target shot (see shot_items)."""
    return "hold_of" in item.metadata.get(KEY, {})


def shot_items(tl: otio.schema.Timeline) -> list:
    """One item per target shot (a clip or a gap), without the hold clips that follow short ones."""
    return [item for item in remake_items(tl) if not is_hold(item)]


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
                                  shot_bounds(meta.get("library"), c.shot_id), c.fingerprint):
            video.append(item)
    ref_track = otio.schema.Track(name="target", kind=otio.schema.TrackKind.Video)
    whole = _range(0, int(target["frames"]), rate)
    tname = target.get("name") or Path(target["path"]).name  # an upload: the user's name for it
    ref_track.append(otio.schema.Clip(name=tname, media_reference=_ref(target["path"], target["duration"], rate, rate,
                                                                        target.get("fingerprint")),
                                      source_range=whole))
    tl.tracks.append(video)
    tl.tracks.append(ref_track)
    if target.get("has_audio"):
        audio = otio.schema.Track(name="target audio", kind=otio.schema.TrackKind.Audio)
        audio.append(otio.schema.Clip(name=tname, media_reference=_ref(target["path"], target["duration"], rate, rate,
                                                                        target.get("fingerprint")),
                                      source_range=whole))
        tl.tracks.append(audio)
    number_shots(tl)
    return tl


def choose_suggestion(tl: otio.schema.Timeline, shot: int, suggestion: int) -> None:
    """Swap suggestion `suggestion` (from 0 = the best) into the target shot whose `target_shot`
    is `shot`. Errors name the shot and suggestion as a person counts them (from 1)."""
    track = remake_track(tl)
    rate = float(tl.metadata[KEY]["target"]["fps"])
    label = {s.index: s.label for s in shots(tl)}.get(shot, f"shot index {shot}")
    for i, item in enumerate(track):
        info = item.metadata.get(KEY, {})
        if info.get("target_shot") != shot or is_hold(item):
            continue
        sugg = info.get("suggestions") or []
        if not sugg and info.get("black"):
            raise RereelError(f"{label} is black in the target, so it has no suggestions; "
                              "fill it from the archive in the remake editor (`rereel serve`), or pick another shot")
        if not sugg:
            raise RereelError(f"{label} has no suggestions: nothing in the archive was close enough; pick another shot")
        if not 0 <= suggestion < len(sugg):
            raise RereelError(f"{label} has {len(sugg)} suggestions, numbered 1 to {len(sugg)}; "
                              f"there is no suggestion {suggestion + 1}")
        s = sugg[suggestion]
        # The shot's length as it stands on the track (with its hold): an editor may have trimmed
        # it, and the cuts after it stay where they are.
        frames = sum(round(it.source_range.duration.rescaled_to(rate).value)
                     for it in _shot_run(track, i))
        fps = s.get("fps")
        if not fps:  # suggestions do not carry their media's rate; the file does
            from rereel.media import probe

            fps = probe(s["path"]).fps
        items = segment_items(shot, Path(s["path"]).name, s["path"], s["start"], s["end"], fps,
                              s.get("video_duration", s["end"]), rate, frames,
                              dict(info) | {"chosen": suggestion, "score": s["score"], "shot_id": s["shot_id"]},
                              shot_bounds(tl.metadata[KEY].get("library"), s["shot_id"]), s.get("fingerprint"))
        for it in _shot_run(track, i)[1:]:
            track.remove(it)
        track[i] = items[0]
        for k, extra in enumerate(items[1:], start=1):
            track.insert(i + k, extra)
        number_shots(tl)
        return
    raise RereelError(f"the timeline has no target shot with index {shot}")


def _shot_run(track: otio.schema.Track, i: int) -> list:
    """Item `i` and the hold clips after it (past any transition between them)."""
    return [track[i]] + [track[k] for k in range(i + 1, shot_end(track, i) + 1) if is_hold(track[k])]


def shot_end(track: otio.schema.Track, i: int) -> int:
    """The track position of the last hold clip of the shot whose item is at `i` (`i` if none),
    past a transition an editor put between them."""
    end = k = i
    while k + 1 < len(track) and (isinstance(track[k + 1], otio.schema.Transition) or is_hold(track[k + 1])):
        k += 1
        if is_hold(track[k]):
            end = k
    return end


def remake_track(tl: otio.schema.Timeline) -> otio.schema.Track:
    for track in tl.video_tracks():
        if track.name == "remake":
            return track
    return tl.video_tracks()[0]


def timeline_format(path: Path | str) -> str:
    """The OTIO adapter a timeline file is written with, from its suffix; refuses any other name."""
    path = Path(path)
    adapter = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}.get(path.suffix.lower())
    if adapter is None:
        raise RereelError(f"{path}: timeline files end in .otio, .edl (CMX 3600) or .xml (FCP XML)")
    if path.is_dir():
        raise RereelError(f"{path}: is a folder; name the timeline file to write")
    return adapter


def require_target(path: Path | str):
    """The probe of a video a remake can follow: moving pictures, two frames at least. A still image
    (PNG, JPEG...) opens as a one-frame video and would remake into a black frame: refused."""
    from rereel.media import probe
    from rereel.media.probe import still_reason

    info = probe(path)  # not a video at all: a one-line MediaError naming the file
    reason = still_reason(info)
    if reason is not None:
        raise RereelError(f"{info.path}: {reason}; a remake follows the shots of a moving video (a trailer, a film)")
    return info


def write_timeline(tl: otio.schema.Timeline, path: Path) -> Path:
    """Write .otio (or .edl / .xml through the OTIO adapters), atomically."""
    from rereel.timeline.export import edl_text, fcp_timeline

    path = Path(path)
    adapter = timeline_format(path)
    number_shots(tl)  # an edited cut list is numbered afresh

    def write(tmp: Path) -> None:
        try:
            if adapter == "cmx_3600":
                tmp.write_text(edl_text(tl))
            elif adapter == "fcp_xml":
                tmp.write_text(fcp_timeline(tl))
            else:
                with _as_typed(tl, path):
                    otio.adapters.write_to_file(tl, str(tmp), adapter_name=adapter)
        except RereelError as e:  # the file is what a user needs named
            raise RereelError(f"{path}: {e}") from None

    # Atomic, per process and thread (the web app may write one timeline from two threads).
    return write_file(path, write)


@contextmanager
def editing(path: Path):
    """Hold the timeline file at `path` for one read-change-write: another process's edit of
    it (a second `rereel choose`, the web editor) waits until this one has written, rather than
    both reading the same version and the later write losing the earlier one's change.

    A lock on the file itself (no lock file beside a user's timeline): `write_timeline` replaces
    the file, so a lock taken on the version a writer has just replaced is taken again. Opened
    for writing where it may be (NFS locks only files open for writing); where the file system
    takes no lock at all, the edit goes on without one, as the library's other locks do."""
    while True:
        try:
            try:
                fd = os.open(path, os.O_RDWR)
            except PermissionError:  # a read-only timeline: its write will say so
                fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise RereelError(f"{path}: no such timeline file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
                os.close(fd)
                raise
            break  # no locks on this file system
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def read_timeline(path: Path) -> otio.schema.Timeline:
    path = Path(path)
    if not path.exists():
        raise RereelError(f"{path}: no such timeline file")
    try:
        tl = otio.adapters.read_from_file(str(path))
    except Exception as e:  # OTIO raises many kinds; the user needs the file and the reason
        raise RereelError(f"{path}: cannot read the timeline ({type(e).__name__}: {e})") from None
    if (not isinstance(tl, otio.schema.Timeline) or not hasattr(tl.metadata.get(KEY), "get")
            or "target" not in tl.metadata[KEY]):
        raise RereelError(f"{path}: not a rereel remake timeline (no target in its metadata)")
    _check_metadata(tl, path)
    _anchor(tl, path.resolve().parent)
    _conform(tl, path)
    return tl


def _number(value, low: float = 0.0) -> float | None:
    """`value` as a finite number of at least `low`, else None (a string, NaN, a negative)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= low else None


def _check_metadata(tl: otio.schema.Timeline, path: Path) -> None:
    """What rereel reads from a timeline's metadata, checked as it is read: a hand-edited or
    truncated one is refused in one line naming what is wrong, not a traceback at its first use
    (or, for a negative length, a render whose later cuts all come early against the sound)."""
    target = tl.metadata[KEY]["target"]
    if not hasattr(target, "get"):
        raise RereelError(f"{path}: the target in its metadata is not a record of the target video")
    if not isinstance(target.get("path"), str) or not target.get("path"):
        raise RereelError(f"{path}: the target in its metadata has no path (the video remade)")
    if not _number(target.get("fps"), 1e-3):
        raise RereelError(f"{path}: the target's frame rate in its metadata is {target.get('fps')!r}, not a positive number")
    for key in ("width", "height", "frames", "duration"):  # every rereel timeline has them
        if _number(target.get(key)) is None:
            raise RereelError(f"{path}: the target's {key} in its metadata is {target.get(key)!r}, not a number of 0 or more")
    if not tl.video_tracks():
        raise RereelError(f"{path}: the timeline has no video track (the remake's shots)")
    if not any(not isinstance(item, otio.schema.Transition) for item in remake_track(tl)):
        raise RereelError(f"{path}: the remake track is empty (no shots)")
    for item in remake_track(tl):
        if isinstance(item, otio.schema.Transition):
            continue
        if item.source_range is not None and item.source_range.duration.value < 0:
            raise RereelError(f"{path}: item {item.name!r} on the remake track has a negative duration")
        if item.source_range is not None and item.source_range.start_time.value < 0:
            raise RereelError(f"{path}: item {item.name!r} on the remake track starts before its media (a negative in point)")
        info = item.metadata.get(KEY, {})
        suggestions = info.get("suggestions") if hasattr(info, "get") else None
        if suggestions is None:
            continue
        if isinstance(suggestions, str) or not hasattr(suggestions, "__len__"):
            raise RereelError(f"{path}: the suggestions of item {item.name!r} in its metadata are not a list")
        for n, s in enumerate(suggestions, 1):
            if not (hasattr(s, "get") and isinstance(s.get("path"), str) and _number(s.get("start")) is not None
                    and _number(s.get("end")) is not None and _number(s.get("score"), -1.0) is not None
                    and _number(s.get("shot_id")) is not None):
                raise RereelError(f"{path}: suggestion {n} of item {item.name!r} in its metadata lacks a path, a start "
                                  "and end of 0 or more, a score or a shot id")


def _conform(tl: otio.schema.Timeline, path: Path) -> None:
    """What an editor may write that rereel reads its own way: a clip without a source range
    plays its media's whole available range (OTIO's meaning), written out so every reader sees
    it; a clip played backwards is refused, naming it (rereel plays media forwards only)."""
    rate = float(tl.metadata[KEY]["target"]["fps"])
    k = 0
    for item in remake_items(tl):
        if not isinstance(item, (otio.schema.Clip, otio.schema.Gap)):  # a Stack or Track: a compound clip
            raise RereelError(f"{path}: item {item.name!r} at {timecode(k, rate)} on the remake track is a nested "
                              f"sequence ({item.schema_name()}); rereel reads clips, gaps and transitions there: "
                              "flatten it in your editor")
        if isinstance(item, otio.schema.Clip) and item.source_range is None:
            available = getattr(item.media_reference, "available_range", None)
            if available is None:
                raise RereelError(f"{path}: clip {item.name!r} at {timecode(k, rate)} has no source range, and its "
                                  "media no available range; give it a source range (in and out) in your editor")
            item.source_range = available
        if not math.isfinite(speed(item)):
            raise RereelError(f"{path}: clip {item.name!r} at {timecode(k, rate)} has a speed that is not a finite number "
                              f"({speed(item):g}); give it a speed in your editor")
        if speed(item) < 0:
            raise RereelError(f"{path}: clip {item.name!r} at {timecode(k, rate)} plays backwards (speed "
                              f"{speed(item):g}); rereel plays clips forwards only: reverse it in your editor")
        if item.source_range is None:  # a gap or other item without one: OTIO lets that be
            raise RereelError(f"{path}: item {item.name!r} at {timecode(k, rate)} has no duration (no source range)")
        k += round(item.source_range.duration.rescaled_to(rate).value)


def _anchor(tl: otio.schema.Timeline, folder: Path) -> None:
    """Relative paths in a hand-edited timeline (a clip's URL such as ../media/a.mp4, the target's
    path) are read from the timeline's folder, as editors read them, not from wherever rereel runs."""
    import re
    from urllib.parse import unquote

    def relative(url: str) -> bool:  # not a URL with a scheme (file:, http:), not absolute
        return bool(url) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url) and not Path(url).is_absolute()

    def beside(url: str) -> Path:
        # A URL reference is percent-encoded (my%20clip.mp4), a path typed by hand need not be.
        path = folder / url
        return Path(os.path.normpath(path if path.exists() or unquote(url) == url else folder / unquote(url)))

    typed: dict[str, str] = {}  # absolute form -> the relative one written, for `_as_typed`
    for clip in tl.find_clips():
        url = getattr(clip.media_reference, "target_url", None)
        if url and relative(url):  # a file:// URL while in use: rendering and matching need no folder
            clip.media_reference.target_url = beside(url).as_uri()
            typed[clip.media_reference.target_url] = url
    target = tl.metadata[KEY]["target"]
    if target.get("path") and relative(str(target["path"])):
        typed[str(beside(str(target["path"])))] = str(target["path"])
        target["path"] = str(beside(str(target["path"])))
    if typed:
        _TYPED[tl] = (folder, typed)


# Timelines read with relative paths (-> (their folder, absolute -> relative)), so that one
# written back to its own folder keeps them: a project moved with its media stays valid.
_TYPED: "weakref.WeakKeyDictionary[otio.schema.Timeline, tuple[Path, dict[str, str]]]" = weakref.WeakKeyDictionary()


class _as_typed:
    """While writing `tl` as .otio into the folder it was read from, its relative paths as they
    were typed (each still naming the same file); absolute again after."""

    def __init__(self, tl: otio.schema.Timeline, path: Path):
        self.tl, self.undo = tl, []
        entry = _TYPED.get(tl)
        if entry is None or path.suffix.lower() != ".otio" or path.absolute().parent.resolve() != entry[0]:
            return
        typed = entry[1]
        for clip in tl.find_clips():
            ref = clip.media_reference
            url = getattr(ref, "target_url", None)
            if url in typed:
                self.undo.append((ref, "target_url", url))
                ref.target_url = typed[url]
        target = tl.metadata[KEY]["target"]
        if str(target.get("path")) in typed:
            self.undo.append((target, "path", target["path"]))
            target["path"] = typed[str(target["path"])]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for obj, key, value in self.undo:
            if key == "target_url":
                obj.target_url = value
            else:
                obj[key] = value


def media_path(ref) -> str:
    url = ref.target_url
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(url).path)
    return url
