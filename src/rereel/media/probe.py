"""Probe a video file: what a user needs to know before decoding it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from rereel.errors import MediaError


STANDARD_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0)


def displayed_size(width: int, height: int, rotation: int, sar: float = 1.0) -> tuple[int, int]:
    """(width, height) as shown: non-square pixels widened or narrowed to square ones (a 16:9 DVD
    picture, 720x576 at 64:45, is shown 1024x576: FFmpeg's rule, the height kept), then a quarter
    turn (a phone's portrait video, stored landscape) swaps them."""
    if sar > 0 and abs(sar - 1.0) > 1e-3:
        width = max(2, round(width * sar))
    return (height, width) if rotation % 180 else (width, height)


def sample_aspect(stream) -> float:
    """A video stream's sample (pixel) aspect ratio as a number; 1.0 where none is stated."""
    for source in (stream, stream.codec_context):
        sar = getattr(source, "sample_aspect_ratio", None)
        if sar is not None and sar > 0:
            return float(sar)
    return 1.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video. `fps` is the average rate; `vfr` is a hint."""

    path: Path
    duration: float
    fps: float
    vfr: bool
    width: int
    height: int
    rotation: int
    has_audio: bool
    codec: str
    frames: int  # the container's count, or an estimate from duration x fps
    base_fps: float = 0.0  # the stream's base rate (FFmpeg's r_frame_rate): its fastest, for a VFR file
    sar: float = 1.0  # the pixels' aspect (width over height): 1 but for anamorphic video (DVD, HDV, some archives)

    @property
    def constant_fps(self) -> float:
        """The constant rate a remake of this video is made at: its own where it has one; for a
        variable rate (a phone's, a screen recording) its base rate when that is a real top speed,
        else the standard rate at or above its average. Its frames are then shown by their times."""
        if not self.vfr or abs(self.base_fps - 2 * self.fps) < 0.01 * self.fps:  # interlaced: a field rate
            return self.fps
        if self.fps <= self.base_fps <= 120:
            return self.base_fps
        return next((r for r in STANDARD_RATES if r >= self.fps - 0.01), self.fps)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, in square pixels, after the rotation the file asks for."""
        return displayed_size(self.width, self.height, self.rotation, self.sar)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def check_readable(path: Path) -> None:
    """Raise MediaError for paths that cannot be opened at all, with the plain reason."""
    if not path.exists():
        raise MediaError(path, "no such file" if not path.is_symlink() else "broken symbolic link")
    if path.is_dir():
        raise MediaError(path, "is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise MediaError(path, "cannot read the file (permission denied)")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")


def open_container(path: Path) -> av.container.InputContainer:
    """Open a file with FFmpeg and turn its errors into one-line MediaErrors."""
    check_readable(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except PermissionError:
        raise MediaError(path, "cannot read the file (permission denied)") from None
    except av.error.FFmpegError as e:
        raise MediaError(path, f"not a readable video: corrupt, truncated or not video at all (FFmpeg: {_ffmpeg_reason(e)})") from None
    if container.format.name in TEXT_DEMUXERS:
        container.close()
        raise MediaError(path, "a text file, not a video")
    return container


# FFmpeg's demuxers that draw a text file as video (a credits .txt became a 640x400 "film" of
# ANSI art, indexed and remade): no footage comes in those.
TEXT_DEMUXERS = {"tty"}


def video_stream(container: av.container.InputContainer):
    """The video stream rereel reads: FFmpeg's own choice (what ffmpeg and ffplay play), which
    passes over cover art and a one-picture stream placed first (an MKV's poster), else the
    first. The caller has checked that the file has a video stream."""
    return container.streams.best("video") or container.streams.video[0]


def _ffmpeg_reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.strip().rstrip(".")


def clockwise_rotation(source) -> int:
    """Degrees (0, 90, 180, 270) the stored picture is turned clockwise to be shown upright.

    The one convention for rotation in rereel (`VideoInfo.rotation`, the catalog's column). A
    decoded av.VideoFrame carries it as its display matrix's angle, which FFmpeg states
    counter-clockwise; a stream (the header `probe` reads) as its `rotate` tag, clockwise.
    """
    if isinstance(source, av.VideoFrame):
        try:
            return int(round(-source.rotation)) % 360
        except (AttributeError, TypeError):
            return 0
    rotate = source.metadata.get("rotate")
    if rotate is not None:
        try:
            return int(float(rotate)) % 360
        except ValueError:
            return 0
    return 0


def _rotation(container: av.container.InputContainer, stream) -> int:
    """The stream's rotation: its `rotate` tag where the file has one, else its first frame's
    display matrix. FFmpeg 7 and later no longer turn a phone video's matrix into the tag, and PyAV
    reads stream side data only through decoded frames: one frame, a few ms even at 1080p."""
    tagged = clockwise_rotation(stream)
    if tagged or "rotate" in stream.metadata:
        return tagged
    try:
        for n, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return clockwise_rotation(frame)
            if n >= 64:  # a decoder that gives no frame: no display matrix to be had
                break
    except av.error.FFmpegError:  # the header is read; a damaged first frame is decode's to report
        pass
    return 0


def probe(path: Path | str) -> VideoInfo:
    """Read the container header: duration, fps, size, rotation, audio. Raises MediaError."""
    path = Path(path)
    with open_container(path) as container:
        if not container.streams.video:
            what = "audio only, no video stream" if container.streams.audio else "no video stream"
            raise MediaError(path, what)
        stream = video_stream(container)
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise MediaError(path, "video stream has no picture size (corrupt header)")
        avg = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(avg) if avg else 0.0
        base = float(stream.base_rate) if stream.base_rate else fps
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frames = stream.frames or int(round(duration * fps))
        return VideoInfo(
            path=path,
            duration=duration,
            fps=fps,
            # Variable frame rate shows as an average rate that differs from the base rate.
            vfr=bool(fps and base and abs(fps - base) / base > 0.01),
            width=ctx.width,
            height=ctx.height,
            rotation=_rotation(container, stream),
            has_audio=bool(container.streams.audio),
            codec=ctx.name,
            frames=frames,
            base_fps=base,
            sar=sample_aspect(stream),
        )


def still_reason(info: VideoInfo) -> str | None:
    """Why the probed file holds no moving pictures, or None: FFmpeg opens a still image (PNG,
    JPEG...) as a one-frame video, which a remake would hold for a whole shot."""
    with open_container(info.path) as c:
        demuxer = c.format.name
    # FFmpeg reads a lone image through its image demuxers (image2, png_pipe, jpeg_pipe...).
    if demuxer == "image2" or demuxer.endswith("_pipe"):
        return f"a still image ({info.codec}), not a video"
    # One frame counted, or a duration of one: a one-frame GIF states a duration of 0 and 1 frame.
    if info.frames == 1 or (info.duration and info.duration * info.fps < 1.5):
        return "a video of a single frame"
    return None
