"""Render a remake timeline to video: archive shots cut to the target's frames, target audio.

One pass writes every requested output (stand-alone and side by side) together: the target
is decoded once (only when a side-by-side is asked for), each archive segment once, from a
seek to its start, in a thread a few frames ahead of the encoder. Cuts land on the target's
own frame boundaries because every output frame k is filled from the timeline item that
covers frame k. Each output is an MP4 (H.264) or, for editors, a MOV (ProRes or DNxHR with
PCM audio): see media/encode.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opentimelineio as otio

from rereel.errors import MediaError, RereelError
from rereel.media import VideoWriter, decode_frames
from rereel.media.decode import DecodedFrame, frames_at_rate, shown_length
from rereel.media.encode import output_codec, size_problem
from rereel.media.prefetch import prefetch
from rereel.outputs import check_not_a_source, check_writable
from rereel.timeline import KEY, is_freeze, media_path, remake_items, shows_file, speed

FITS = ("cover", "letterbox")


@dataclass
class Segment:
    frames: int  # output frames this item covers
    path: str | None  # None: black
    start: float  # archive seconds of the first output frame
    hold: bool = False  # show the frame at `start` for every output frame (FreezeFrame)
    speed: float = 1.0  # archive seconds a second of output (an editor's speed change)


def segments(tl: otio.schema.Timeline, rate: float) -> list[Segment]:
    """What each remake-track item puts on screen: clips play (at their speed), freeze-frame
    clips hold, gaps are black. Transitions are cuts (see timeline.transitions)."""
    out = []
    for item in remake_items(tl):
        frames = round(item.source_range.duration.rescaled_to(rate).value)
        if shows_file(item):
            out.append(Segment(frames, media_path(item.media_reference), item.source_range.start_time.to_seconds(),
                               is_freeze(item), speed(item)))
        else:
            out.append(Segment(frames, None, 0.0))
    return out


def archive_frames(seg: Segment, rate: float, width: int, height: int, fit: str) -> Iterator[np.ndarray]:
    """The archive frame shown at each output frame time of `seg` (held past the source's end).

    Only the timeline's range is read: a segment shorter than its target shot is followed by
    its own hold clip (timeline/layout.py), so nothing here runs into the next archive shot.
    """
    if not Path(seg.path).exists():
        raise MediaError(seg.path, "archive file named in the timeline is missing")
    source = decode_frames(seg.path, start=max(0.0, seg.start - 1.0))
    current: DecodedFrame | None = None
    upcoming: DecodedFrame | None = next(source, None)
    # A frame counts as on screen from its time less the rounding of its timestamp: Matroska and
    # WebM keep milliseconds, so at 24 fps frame 1 is stamped 0.042 s, after its 1/24 s; read
    # exactly, it came a frame late and about a third of the frames showed twice (others never).
    # Only a time base much finer than a frame rounds: one a frame long (AVI, some MP4s) counts
    # frames exactly, and taken as slack it would show the next frame early (across a cut, too).
    base = float(upcoming.frame.time_base) if upcoming is not None and upcoming.frame.time_base else 0.0
    frame_length = shown_length(upcoming, None) if upcoming is not None else None
    slack = base if 1e-4 < base <= 0.25 * (frame_length or 1 / 30) else 1e-4
    slack = min(slack, 0.25 / rate)
    for j in range(seg.frames):
        t = seg.start + seg.speed * j / rate + slack
        while upcoming is not None and upcoming.time <= t:
            current, upcoming = upcoming, next(source, None)
        shown = current or upcoming
        if shown is None:
            raise MediaError(seg.path, f"no frame at {t:.2f} s")
        if seg.hold:  # one frame, fitted once, for the whole clip
            rgb = shown.fit(width, height, fit)
            source.close()
            for _ in range(seg.frames):
                yield rgb
            return
        yield shown.fit(width, height, fit)
    source.close()


def _is_mov(path) -> bool:
    return Path(path).suffix.lower() == ".mov"


def _codec_for(path, codec: str | None) -> str | None:
    """--codec names the editing codec of the .mov outputs; an .mp4 beside them stays H.264."""
    return None if codec in ("prores", "dnxhr") and not _is_mov(path) else codec


def timeline_sources(tl: otio.schema.Timeline) -> set[Path]:
    """The files a render of `tl` reads (the target, the archive files); raises if one is missing,
    or holds other content than when the timeline was made (see `check_unchanged`)."""
    target = Path(tl.metadata[KEY]["target"]["path"])
    if not target.exists():
        raise MediaError(target, "target video named in the timeline is missing")
    sources = {target.resolve()}
    for seg in segments(tl, float(tl.metadata[KEY]["target"]["fps"])):
        if seg.path is not None:
            if not Path(seg.path).exists():
                raise MediaError(seg.path, "archive file named in the timeline is missing")
            sources.add(Path(seg.path).resolve())
    check_unchanged(tl)
    return sources


def check_unchanged(tl: otio.schema.Timeline, only: set[str] | None = None) -> None:
    """A file re-exported or replaced under its name since the remake holds other pictures: the
    timeline's times would cut into the wrong footage, silently. Timelines record each file's
    fingerprint (media/fingerprint.py: 3 MiB read a file); one made before they did, or a clip an
    editor added, has none and is taken as it is. `only`: the paths to check (a pair of one shot)."""
    from rereel.media import fingerprint

    def recorded_print(meta) -> str | None:  # another tool may have written anything there
        meta = meta.get(KEY) if hasattr(meta, "get") else None
        made = meta.get("fingerprint") if hasattr(meta, "get") else None
        return made if isinstance(made, str) and made else None

    recorded = {}
    target = tl.metadata[KEY]["target"]
    if recorded_print({KEY: target}):
        recorded[str(target["path"])] = (target["fingerprint"], "target video")
    for clip in tl.find_clips():
        ref = clip.media_reference
        made = recorded_print(ref.metadata) if hasattr(ref, "target_url") else None
        if made:
            recorded.setdefault(media_path(ref), (made, "archive file"))
    wanted = None if only is None else {str(Path(p)) for p in only}
    for path, (made, what) in recorded.items():
        if wanted is not None and str(Path(path)) not in wanted:
            continue
        if Path(path).exists() and fingerprint(Path(path)) != made:
            again = "remake from it" if what == "target video" else "index it again and remake"
            raise MediaError(path, f"{what} holds other content than when the timeline was made; {again}, "
                                   "or put the original file back")


def frame_size(tl: otio.schema.Timeline) -> tuple[int, int]:
    """The render's frame: the target's size as shown, sides rounded down to even (H.264's 4:2:0)."""
    target = tl.metadata[KEY]["target"]
    return int(target["width"]) // 2 * 2, int(target["height"]) // 2 * 2


def check_outputs(outputs: list[tuple[Path, bool]], codec: str | None = None, sources: set[Path] = frozenset(),
                  size: tuple[int, int] | None = None) -> None:
    """Refuse, before any frame is made, what a render could not finish or should not do: an
    output name with no codec for it, two outputs on one file, an output over a source, a frame
    `size` (the target's, width x height) the output's codec cannot take."""
    if codec not in (None, "h264") and outputs and not any(_is_mov(p) for p, _ in outputs):
        output_codec(outputs[0][0], codec)  # ProRes asked for, and no .mov to write it in: says so
    seen = set()
    for path, sbs in outputs:
        chosen = output_codec(path, _codec_for(path, codec))
        if size is not None:
            problem = size_problem(chosen, size[0] * (2 if sbs else 1), size[1])
            if problem:
                raise RereelError(f"{path}: {problem}")
        check_not_a_source([path], sources, reads="the remake reads this file")
        key = Path(path).resolve()
        if key in seen:
            raise RereelError(f"{path}: named for two outputs")
        if Path(path).is_dir():
            raise RereelError(f"{path}: is a folder; name the video file to write")
        check_writable(path)
        seen.add(key)


def render_timeline(tl: otio.schema.Timeline, outputs: list[tuple[Path, bool]], *, fit: str = "cover",
                    on_frame=None, codec: str | None = None) -> list[Path]:
    """Render to each (path, side_by_side) in `outputs`; returns the paths written. `codec`:
    h264, prores or dnxhr for the .mov outputs (default: each output's suffix decides)."""
    if fit not in FITS:
        raise RereelError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    target = tl.metadata[KEY]["target"]
    tpath, rate = target["path"], float(target["fps"])
    width, height = frame_size(tl)
    check_outputs(outputs, codec, timeline_sources(tl), (width, height))
    segs = segments(tl, rate)
    total = sum(s.frames for s in segs)
    need_target = any(sbs for _, sbs in outputs)
    writers = []
    try:
        for path, sbs in outputs:
            writers.append(VideoWriter(path, width * (2 if sbs else 1), height, rate, audio_from=tpath,
                                       codec=_codec_for(path, codec)))
    except BaseException:
        for w in writers:
            w.abort()
        raise
    # Decoding and fitting run a few frames ahead, in a thread of their own, while this one
    # encodes: on two cores the render then costs about the larger of the two, not their sum.
    # Eight frames ahead (with the target's, 100 MB at 1080p): three were slower in two runs
    # of three on the Sintel remake.
    frames = None
    try:
        frames = prefetch(_output_frames(segs, tpath if need_target else None, rate, width, height, fit,
                                         bool(target.get("by_time"))), size=8)
        for k, (rgb, target_rgb) in enumerate(frames, 1):
            for (path, sbs), w in zip(outputs, writers):
                w.write(np.concatenate([target_rgb, rgb], axis=1) if sbs else rgb)
            if on_frame is not None:
                on_frame(k, total)
        return [w.close() for w in writers]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        if frames is not None:
            frames.close()


def _output_frames(segs: list[Segment], target: str | None, rate: float, width: int, height: int,
                   fit: str, by_time: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Each output frame's archive picture, with the target's beside it when `target` is given
    (for the side-by-side; its last frame held should the target end first).

    A variable-rate target (a phone's, `by_time`) shows the picture on screen at each output
    frame's time (`frames_at_rate`), so it stays on its soundtrack."""
    # A target remade at a constant rate it does not have (a variable rate, `constant_fps`) is read
    # by time; any other frame by frame, as its cuts count them (a few dropped frames would
    # otherwise shift its picture against the cuts).
    target_iter = (frames_at_rate(target, rate) if by_time else decode_frames(target)) if target else None
    last_target = np.zeros((height, width, 3), np.uint8) if target else None
    last_shown = None
    black = np.zeros((height, width, 3), np.uint8)
    try:
        for seg in segs:
            for rgb in archive_frames(seg, rate, width, height, fit) if seg.path else (black for _ in range(seg.frames)):
                if target_iter is not None:
                    tf = next(target_iter, None)
                    if tf is not None and tf is not last_shown:  # a frame held (variable rate) is fitted once
                        last_target, last_shown = tf.fit(width, height, "letterbox"), tf
                yield rgb, last_target
    finally:
        if target_iter is not None:
            target_iter.close()
