"""Stream decoded frames with their presentation times. One pass, nothing held."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from rereel.device import cpu_cores, cpu_threads
from rereel.errors import MediaError
from rereel.media.image import centre_crop, cover_size
from rereel.media.probe import _ffmpeg_reason, clockwise_rotation, displayed_size, open_container, sample_aspect, video_stream

# One rule for every length: a file whose decoded frames end more than TRUNCATION_SLACK_S,
# or TRUNCATION_SHARE of its stated duration if that is more, before the duration its header
# states is truncated, and refused rather than indexed as a shorter film (a copy still being
# written, a broken download). Healthy files end within 0.2 s of it (the container's duration
# may include an audio tail); the share leaves room for longer tails on long films.
TRUNCATION_SLACK_S = 1.0
TRUNCATION_SHARE = 0.01


def is_truncated(decoded_end: float, stated: float | None) -> bool:
    """Whether frames ending at `decoded_end` s fall short of a `stated` duration (see above)."""
    return bool(stated) and decoded_end < stated - max(TRUNCATION_SLACK_S, TRUNCATION_SHARE * stated)


@dataclass
class DecodedFrame:
    n: int  # 0-based count of the frames this decode_frames call yielded before this one
    time: float  # presentation time in seconds from the stream start (VFR-safe)
    frame: av.VideoFrame
    from_start: bool = True  # decoded from the file's first frame, so `n` is also its frame number
    sar: float = 1.0  # the stream's pixel aspect (PyAV's frames do not carry it): see `display_size`

    @property
    def index(self) -> int:
        """The frame's number in the file (0-based). Known only when decoding began at the first
        frame; after a seek (`start` > 0) the number is unknown and this raises: use `time`, or `n`."""
        if not self.from_start:
            raise AttributeError("DecodedFrame.index: frame number unknown when decoding starts past 0 (use .time or .n)")
        return self.n

    def rgb(self, width: int, height: int) -> np.ndarray:
        return frame_to_rgb(self.frame, width, height)

    def detector_rgb(self, width: int, height: int) -> np.ndarray:
        """`frame_to_rgb` for a shot detector, which sees every frame (its `in_yuv`)."""
        return frame_to_rgb(self.frame, width, height, in_yuv=True)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: square pixels, upright."""
        return display_size(self.frame, self.sar)

    def fit(self, width: int, height: int, fit: str) -> np.ndarray:
        """`fit_frame` of this frame, at its shown aspect."""
        return fit_frame(self.frame, width, height, fit, self.sar)


def frame_to_rgb(frame: av.VideoFrame, width: int, height: int, *, in_yuv: bool = False) -> np.ndarray:
    """Scale (FFmpeg's area filter) and convert to an RGB uint8 array of shape (height, width, 3).

    `width` and `height` are the display size: for a rotated frame the scaling is done on
    the stored picture and the result turned upright.

    `in_yuv` (what a shot detector gets, every frame): a 4:2:0 frame is scaled in YUV, then
    converted unscaled. FFmpeg's scaler converts YUV to RGB in SIMD only unscaled: scaling and
    converting in one pass wrote RGB at 1.6-1.9 ns a pixel, whatever the input, which cost a
    detector about half its time (140 us a 360p frame against 72 in two passes, 406 against
    331 at 1080p). As exact: two passes round to 8 bits between them, and were 0.77 levels from
    a float reference on average against one pass's 0.91 (every 25th frame of each sample
    archive video against its full-size RGB area-scaled in float); full range stays full. Other
    formats take one pass: through 4:2:0, a 4:4:4 or 4:2:2 picture would lose colour.
    """
    rot = clockwise_rotation(frame)
    if rot % 180:
        width, height = height, width
    # threads: FFmpeg's scaler starts a thread per core unless told; a process given a share of
    # the cores (see decode_frames) keeps to it. The same pixels either way (627 frames of the
    # archive at three sizes compared). A small picture (a detector's, the encoder's, a
    # thumbnail up to 4:3) is scaled in this thread alone: from 720p on 2 cores, 256x144 took
    # 219 us across two threads and 439 us of CPU, 198 us on one; the frames of a lone film indexed
    # 9% sooner, its decode thread no longer waiting on the scaler's.
    threads = cpu_threads()
    if threads >= cpu_cores():
        threads = 1 if width * height <= SMALL_PICTURE else 0  # 0: FFmpeg's choice, a thread a core
    # Scaled to BGR, then the channels swapped: FFmpeg's scaler writes BGR 25-45% faster than
    # RGB here (every size from 224x224 to 1080p, down and up), and no less exactly: against
    # an independent reference (RGB at full size, area-scaled in float by OpenCV) BGR was off
    # by 0.77-1.01 levels on average, RGB by 0.87-1.17, over four archive films. The swap is
    # cheap beside either. The pixels differ from RGB's by about a level (mean, at most 5).
    import cv2  # here, not at the top: commands that only probe files need no OpenCV (70 ms)

    if in_yuv and frame.format.name in ("yuv420p", "yuvj420p"):
        small = _reformatter(width, height, "scale in yuv").reformat(
            frame, width, height, frame.format.name, interpolation="AREA", threads=threads)
        bgr = _reformatter(width, height, "convert").reformat(small, width, height, "bgr24", threads=threads).to_ndarray()
    else:
        bgr = _reformatter(width, height).reformat(frame, width, height, "bgr24", interpolation="AREA", threads=threads).to_ndarray()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rot:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=-(rot // 90)))  # np.rot90 turns counter-clockwise for k > 0
    return rgb


SMALL_PICTURE = 320 * 320  # pixels: scaled in one thread (see frame_to_rgb): a 4:3 thumbnail too

_scalers = threading.local()
_SCALERS_PER_THREAD = 8  # outputs in use at once: detector (two passes), encoder, thumbnail, render's fits


def _reformatter(width: int, height: int, role: str = "bgr24") -> VideoReformatter:
    """A reformatter kept per thread, output size and role. `frame.reformat` builds a new FFmpeg
    scaler context for every frame, which for a 720p frame costs 5-6x the scaling itself; a
    kept one is rebuilt only when the input changes (same pixels out: same scaler, same
    settings). One per size and role (`frame_to_rgb`'s: scaling to RGB, scaling in YUV, converting
    a frame of that size), since a context is reused only for identical parameters (a role whose
    input kept changing would build one a frame); per thread, since a context must not be
    shared between threads."""
    cache = getattr(_scalers, "cache", None)
    if cache is None:
        cache = _scalers.cache = OrderedDict()
    r = cache.get((width, height, role))
    if r is None:
        r = cache[(width, height, role)] = VideoReformatter()
        if len(cache) > _SCALERS_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end((width, height, role))
    return r


def fit_frame(frame: av.VideoFrame, width: int, height: int, fit: str, sar: float = 1.0) -> np.ndarray:
    """Scale a frame (area filter) to fill width x height, centre-cropped ("cover"), or to fit
    inside it on black ("letterbox"); RGB uint8 (height, width, 3), its shown aspect kept either
    way (`sar`: its pixels' aspect, DecodedFrame.sar)."""
    sw, sh = display_size(frame, sar)
    if fit == "cover":
        w, h = cover_size(width, height, sw, sh)
        return np.ascontiguousarray(centre_crop(frame_to_rgb(frame, w, h), width, height))
    scale = min(width / sw, height / sh)
    w, h = max(2, round(sw * scale)), max(2, round(sh * scale))
    rgb = frame_to_rgb(frame, w, h)
    canvas = np.zeros((height, width, 3), np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    canvas[y : y + h, x : x + w] = rgb[: height - y, : width - x]
    return canvas


def display_size(frame: av.VideoFrame, sar: float = 1.0) -> tuple[int, int]:
    """Width and height of the frame as it should be shown: in square pixels (`sar`, its pixels'
    aspect: DecodedFrame.sar), rotation applied."""
    return displayed_size(frame.width, frame.height, clockwise_rotation(frame), sar)


class _UncleanSeek(Exception):
    """The keyframe a seek landed on decodes damaged (see decode_frames)."""

    def __init__(self, landed: float):
        super().__init__(landed)
        self.landed = landed  # the damaged keyframe's time


ENTRY_TRIES = 3  # keyframes tried further back before the file's start


def decode_frames(path: Path | str, *, start: float = 0.0, end: float | None = None) -> Iterator[DecodedFrame]:
    """Every video frame of `path` from `start` to `end` seconds (see `_decode_frames`). A seek
    lands on the keyframe before `start`; where that frame is no clean entry point (an I frame
    of an open GOP: FFmpeg decodes it, and those after it, damaged; the sample archive's
    cockatoo rendered as grey blocks on green from 3.8 s on), the keyframes before it are tried,
    then the file's start, which costs time, never pictures. A file damaged from its start
    anyway is read from the seek as it is."""
    if start <= 0:
        yield from _decode_frames(path, start=start, end=end)  # no seek
        return
    at = start
    for _ in range(ENTRY_TRIES):
        try:
            yield from _decode_frames(path, start=start, end=end, seek_to=at, clean_entry=True)
            return
        except _UncleanSeek as e:  # raised before any frame was given
            at = e.landed - 1e-3  # the keyframe before that one
            if at <= 0:
                break
    first = _decode_frames(path, end=1e-9)  # the file's first frame, alone
    try:
        clean_start = next(first, None)
    finally:
        first.close()
    if clean_start is not None and not clean_start.frame.is_corrupt:
        yield from _decode_frames(path, start=start, end=end)
    else:
        yield from _decode_frames(path, start=start, end=end, seek_to=start)


def _decode_frames(path: Path | str, *, start: float = 0.0, end: float | None = None,
                   seek_to: float | None = None, clean_entry: bool = False) -> Iterator[DecodedFrame]:
    """Yield every video frame of `path` in presentation order, from `start` to `end` seconds.
    Each frame's `n` counts from 0 in this call; its `index` (frame number in the file) is known
    only when `start` is 0.

    Raises MediaError when the file cannot be opened, has no video, or (reading the whole file)
    its frames end before its stated duration by more than the rule above allows, whether the
    data just stops or fails to decode; a range read raises on any decoding error.
    """
    path = Path(path)
    container = open_container(path)
    try:
        if not container.streams.video:
            what = "audio only, no video stream" if container.streams.audio else "no video stream"
            raise MediaError(path, what)
        stream = video_stream(container)
        threads = cpu_threads()
        if threads > 1:
            stream.thread_type = "AUTO"  # frame + slice threads: decoding is the floor of every job
            if threads < cpu_cores():  # a share of the cores (REREEL_THREADS: library.workers, Ray's actors)
                stream.thread_count = threads
        else:  # a process given one core
            stream.thread_count = 1  # frame threads would cost it a third more CPU for nothing
        tb = stream.time_base
        # A frame's time as ints divided: exactly float((pts - first) * tb) (Python rounds an int
        # division correctly, as float() of the Fraction does) without a Fraction a frame.
        tb_num, tb_den = tb.numerator, tb.denominator
        sar = sample_aspect(stream)
        first_pts = stream.start_time if stream.start_time is not None else None
        if seek_to is not None and seek_to > 0:  # None: from the file's start
            container.seek(int(seek_to / tb) + (first_pts or 0), stream=stream, backward=True)
        stated = float(stream.duration * tb) if stream.duration is not None else (
            container.duration / 1_000_000 if container.duration else None
        )
        index = 0
        last_time = 0.0
        step = 1 / float(stream.average_rate or 25)  # a frame's length, for where the last one ends
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    t = last_time + (1 / float(stream.average_rate or 25))
                else:
                    if first_pts is None:
                        first_pts = frame.pts
                    t = (frame.pts - first_pts) * tb_num / tb_den
                if clean_entry and index == 0 and frame.is_corrupt:
                    raise _UncleanSeek(t)
                if t < start - 1e-6:
                    continue
                if end is not None and t >= end:
                    return
                if index:
                    step = max(t - last_time, 1e-3)
                last_time = t
                yield DecodedFrame(index, t, frame, start <= 0, sar)
                index += 1
        except av.error.FFmpegError as e:
            # A whole-file read judges an error like an early end (a truncated MP4 fails this
            # way where a truncated WebM just ends): the same rule below decides for both.
            failure = f" (FFmpeg: {_ffmpeg_reason(e)})"
            if start > 0 or end is not None or not stated:  # nothing to judge the loss by
                raise MediaError(path, f"corrupt video data after {last_time:.1f} s{failure}") from None
        else:
            failure = ""
        if index == 0:
            raise MediaError(path, "no video frame could be decoded (corrupt or truncated)" + failure)
        if start == 0 and end is None and is_truncated(last_time + step, stated):
            raise MediaError(path, f"truncated: frames stop at {last_time + step:.1f} s of a stated {stated:.1f} s{failure}")
    finally:
        container.close()


def frames_at_rate(path: Path | str, rate: float) -> Iterator[DecodedFrame]:
    """The frame on screen at each frame of a constant `rate` (the one shown at (k + 1/2) / rate
    by its own times), to the end of the video's last frame: each frame once for a file at that
    rate (a timestamp rounded by up to half a frame still lands), a variable-rate file's (a
    phone's) held or skipped as its times say, so its pictures stay on its soundtrack."""
    source = decode_frames(path)
    try:
        upcoming = next(source, None)
        shown: DecodedFrame | None = None
        step = 1 / rate  # the interval before the last frame: its length, unless it states its own
        k = 0
        while True:
            t = (k + 0.5) / rate
            while upcoming is not None and (shown is None or upcoming.time <= t):
                if shown is not None:
                    step = max(upcoming.time - shown.time, 1e-3)
                shown, upcoming = upcoming, next(source, None)
            if shown is None or (upcoming is None and t >= shown.time + shown_length(shown, step)):
                return
            yield shown
            k += 1
    finally:
        source.close()


def shown_length(f: DecodedFrame, otherwise: float | None) -> float | None:
    """How long a frame is shown, as its file states (a GIF's delay, a container's duration), or
    `otherwise`: an animated GIF alternating 160 and 40 ms frames ran 80 ms long, its last frame
    given the one before's length."""
    duration, base = f.frame.duration, f.frame.time_base
    return float(duration * base) if duration and base else otherwise


def output_frames(path: Path | str, info) -> tuple[Iterator[DecodedFrame], float, int]:
    """(frames, rate, about how many) to remake a video at its constant rate (`VideoInfo.constant_fps`):
    frame by frame where it has that rate, by time (`frames_at_rate`) where its rate varies."""
    rate = info.constant_fps
    if rate == info.fps:
        return decode_frames(path), rate, max(1, info.frames)
    return frames_at_rate(path, rate), rate, max(1, round(info.duration * rate))
