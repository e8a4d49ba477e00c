"""Write videos with PyAV, atomically: a temporary name, renamed when complete.

Two containers, three codecs: H.264 + AAC in MP4 (to watch and share), and for editors an
intermediate they can grade, in MOV with the audio as 16-bit PCM: ProRes 422 (FFmpeg's
prores_ks) or DNxHR HQ (dnxhd with the dnxhr_hq profile), both 4:2:2.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rereel.errors import MediaError, RereelError
from rereel.media.prefetch import drain
from rereel.media.probe import open_container, video_stream
from rereel.outputs import partial_path, ready


@dataclass(frozen=True)
class Codec:
    encoder: str  # FFmpeg's name
    pix_fmt: str
    options: dict
    container: str  # the one suffix it is written in
    audio: str  # the audio encoder beside it
    audio_format: str  # the sample format that audio encoder takes
    what: str  # for messages


CODECS = {
    "h264": Codec("libx264", "yuv420p", {"preset": "veryfast"}, ".mp4", "aac", "fltp", "H.264 + AAC"),
    "prores": Codec("prores_ks", "yuv422p10le", {"profile": "2"}, ".mov", "pcm_s16le", "s16",
                    "ProRes 422 + PCM"),
    "dnxhr": Codec("dnxhd", "yuv422p", {"profile": "dnxhr_hq"}, ".mov", "pcm_s16le", "s16", "DNxHR HQ + PCM"),
}
SUFFIX_DEFAULT = {".mp4": "h264", ".mov": "prores"}


def output_codec(path: Path | str, codec: str | None = None) -> str:
    """The codec a video output is written with: `codec` if its container fits, else the one its
    suffix implies (.mp4 H.264, .mov ProRes). Raises a one-line error naming the file otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if codec is not None and codec not in CODECS:
        raise RereelError(f"unknown codec {codec!r}; use h264, prores or dnxhr")
    if not suffix and path.name.lower() in SUFFIX_DEFAULT:  # `-o .mp4`: a hidden file's name, no suffix
        raise RereelError(f"{path}: a name is needed before {path.name}, such as remake{path.name.lower()}")
    if suffix not in SUFFIX_DEFAULT:
        raise RereelError(f"{path}: a video is written as .mp4 (H.264 + AAC) or .mov "
                          "(ProRes or DNxHR with PCM audio, for editing); name it so")
    if codec is None or suffix == ".mp4" and codec == "h264":
        return SUFFIX_DEFAULT[suffix]
    if CODECS[codec].container != suffix:
        raise RereelError(f"{path}: {CODECS[codec].what} is written in a {CODECS[codec].container} file, "
                          f"not {suffix}; name it {path.stem}{CODECS[codec].container}")
    return codec


def size_problem(codec: str, width: int, height: int) -> str | None:
    """Why `codec` cannot encode a width x height picture, or None (FFmpeg's DNxHR encoder wants
    at least 256x120)."""
    if codec == "dnxhr" and (width < 256 or height < 120):
        return f"DNxHR needs a picture of at least 256x120, not {width}x{height}; use --codec prores"
    return None


def as_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: 23.976 becomes 24000/1001, 25.0 stays 25."""
    if isinstance(fps, Fraction):
        return fps
    for den in (1, 1001, 100):
        num = round(fps * den)
        if abs(num / den - fps) < 1e-4:
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(100_000)


class VideoWriter:
    """Encode RGB frames (H, W, 3 uint8) to an MP4 or MOV (`codec`: see CODECS, default from the
    suffix); optionally mux audio from another file.

    Output goes to `.<name>.<pid>.partial.<suffix>` beside `path` (hidden, unique per process, so two
    jobs never share one) and is renamed to `path` only by `close()`, so an interrupted or
    failed job never leaves a file that looks finished. Use it as a context manager, or call
    `abort()`: an exception inside the block (KeyboardInterrupt included: the CLI turns SIGTERM
    into one) removes the partial file.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: float | Fraction,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        audio_from: Path | str | None = None,
        audio_start: float = 0.0,
        audio_end: float | None = None,
        codec: str | None = None,
    ):
        self.path = Path(path)
        self.codec_name = output_codec(self.path, codec)
        self.codec = CODECS[self.codec_name]
        suffix = self.codec.container
        self.tmp = partial_path(self.path, f"{os.getpid()}.partial{suffix}")
        self.width, self.height = width - width % 2, height - height % 2  # subsampled chroma needs even sizes
        problem = size_problem(self.codec_name, self.width, self.height)
        if problem:
            raise MediaError(self.path, problem)
        self.rate = as_rate(fps)
        self.audio_from = Path(audio_from) if audio_from else None
        self.audio_start, self.audio_end = audio_start, audio_end
        self.frames = 0
        self._a = None
        self._audio_in = None
        self._track: _AudioTrack | None = None
        self._out = None
        try:  # once the partial file exists nothing may leave it behind (a signal, a codec missing)
            ready(self.path, self.tmp)  # a folder that cannot be made, a place that cannot be written: said now
            self._out = av.open(str(self.tmp), "w", format=suffix[1:])
            self._v = self._out.add_stream(self.codec.encoder, rate=self.rate)
            self._v.width, self._v.height = self.width, self.height
            self._v.pix_fmt = self.codec.pix_fmt
            options = dict(self.codec.options)
            if self.codec.encoder == "libx264":
                options |= {"crf": str(crf), "preset": preset}
            self._v.options = options
            self._v.codec_context.time_base = 1 / self.rate
        except BaseException:
            self.abort()
            raise
        if self.audio_from is not None:
            try:
                self._open_audio()
            except av.error.FFmpegError as e:  # e.g. a sample rate the audio encoder refuses
                self.abort()
                raise MediaError(self.audio_from, f"cannot encode its audio ({str(e).strip()})") from None
            except BaseException:
                self.abort()
                raise

    def _open_audio(self) -> None:
        src = open_container(self.audio_from)
        if not src.streams.audio:
            src.close()  # a silent source gives a silent output, not an error
            return
        self._audio_in = src
        ain = src.streams.audio[0]
        # Output time 0 is the source's first video frame (decode.py measures video times from
        # the stream's first pts); audio is measured from the same origin, or a source whose
        # streams start late (MPEG-TS at 1.4 s, camera files) would come out shifted.
        ref = video_stream(src) if src.streams.video else ain
        self._origin = float(ref.start_time * ref.time_base) if ref.start_time is not None else 0.0
        rate = ain.codec_context.sample_rate or 48000
        self._a = self._out.add_stream(self.codec.audio, rate=rate)
        if self.codec.audio == "aac":
            self._a.bit_rate = 192_000
        self._a.layout = "stereo" if (ain.codec_context.channels or 2) >= 2 else "mono"
        self._a.format = self.codec.audio_format
        # The header is written (every codec opened) here, in this thread, before the audio
        # thread touches its codec: a container is not thread-safe, two codecs are.
        self._out.start_encoding()
        self._track = _AudioTrack(self)

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[0] != self.height or rgb.shape[1] != self.width:
            rgb = rgb[: self.height, : self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        for packet in self._v.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        if self._track is not None:
            self._track.video_at(self.frames / float(self.rate))
            for packet in self._track.ready():  # muxed as they come: the file stays interleaved
                self._out.mux(packet)

    def close(self) -> Path:
        """Flush, finish the audio, and move the finished file into place. Should that fail or
        be interrupted, the partial file is removed and the audio thread stopped (`abort`)."""
        try:
            if self.frames == 0:
                raise MediaError(self.path, "no video frame was written; nothing to save")
            for packet in self._v.encode(None):
                self._out.mux(packet)
            if self._track is not None:
                for packet in self._track.finish(self.frames / float(self.rate)):
                    self._out.mux(packet)
                self._audio_in.close()
            self._out.close()
            os.replace(self.tmp, self.path)
            return self.path
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._track is not None:
            self._track.stop()
        try:
            if self._out is not None:
                self._out.close()
        except Exception:
            pass
        if self._audio_in is not None:
            self._audio_in.close()
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:  # no partial to remove: its folder could not be made
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AudioTrack:
    """The output's audio, decoded, resampled and encoded in a thread of its own while the video
    is encoded: AAC costs about 1 s a minute of sound, which as a last step after the video
    was a fifth of a plain re-encode's time. (PyAV releases the GIL in its codecs.)

    The audio lasts as long as the video written, a length known only at `finish`, so the thread
    follows the video: it encodes a sound frame once the video has passed its end, and trims
    the last one sample-accurately once the length is final. Packets come back through a
    bounded queue; only the writer's thread muxes them (a container is not thread-safe)."""

    _DONE = object()

    def __init__(self, writer: VideoWriter):
        self.w = writer
        self.packets: queue.Queue = queue.Queue(maxsize=256)  # about 5 s of AAC
        self.cond = threading.Condition()
        self.video_end = 0.0
        self.final = False
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="rereel-audio")
        self.thread.start()

    def video_at(self, seconds: float) -> None:
        with self.cond:
            self.video_end = seconds
            self.cond.notify()

    def ready(self) -> list:
        """Packets encoded so far (none waited for)."""
        out = []
        while True:
            try:
                item = self.packets.get_nowait()
            except queue.Empty:
                return out
            if item is self._DONE or isinstance(item, BaseException):
                self.packets.put(item)  # for `finish`
                return out
            out.append(item)

    def finish(self, seconds: float) -> list:
        """Every packet left, once the video's length is `seconds`; raises what the thread met."""
        with self.cond:
            self.video_end, self.final = seconds, True
            self.cond.notify()
        out = []
        while (item := self.packets.get()) is not self._DONE:
            if isinstance(item, BaseException):
                self.thread.join()
                raise item
            out.append(item)
        self.thread.join()
        return out

    def stop(self) -> None:
        """Abandon the audio (the write failed): end the thread without waiting for the video."""
        with self.cond:
            self.stopped = True
            self.cond.notify()
        drain(self.packets, self.thread)

    def _put(self, item) -> None:
        while not self.stopped:
            try:
                self.packets.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _until(self, t: float) -> float | None:
        """Wait until the video reaches `t` s or its length is final; the end the audio may
        reach then, or None when stopped."""
        with self.cond:
            while not (self.stopped or self.final or self.video_end >= t):
                self.cond.wait()
            if self.stopped:
                return None
            return self.video_end if self.final else max(self.video_end, t)

    def _run(self) -> None:
        try:
            self._encode()
            self._put(self._DONE)
        except av.error.FFmpegError as e:
            self._put(MediaError(self.w.audio_from, f"cannot decode its audio ({str(e).strip()})"))
        except BaseException as e:  # a bug: raised in the writer's thread, at finish
            self._put(e)

    def _encode(self) -> None:
        w = self.w
        src, ain, aout = w._audio_in, w._audio_in.streams.audio[0], w._a
        if w.audio_start > 0:
            src.seek(int((w.audio_start + w._origin) * 1_000_000), backward=True)
        # A downmix (5.1 or 7.1 to stereo) with FFmpeg's default matrix adds the centre and
        # surrounds to each side at 0.71: a loud mix went up to 1.7x full scale and clipped.
        # Normalised (`rematrix_maxval`: each side's weights sum to 1) it cannot clip; the price is
        # level, about 8 dB less for the front channels of a 5.1 mix (10 for a 7.1's).
        downmix = (ain.codec_context.channels or 2) > aout.layout.nb_channels
        resampler = av.AudioResampler(format="fltp", layout=aout.layout.name, rate=aout.rate,
                                      options={"rematrix_maxval": "1.0"} if downmix else None)
        pcm = w.codec.audio_format == "s16"
        pts = None
        for frame in src.decode(ain):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base) - w._origin
            dur = frame.samples / frame.sample_rate
            if t + dur <= w.audio_start:
                continue
            # The audio lasts as long as the video written, whatever the source's length.
            end = self._until(t + dur - w.audio_start)
            if end is None:
                return
            end += w.audio_start
            if w.audio_end is not None:
                end = min(end, w.audio_end)
            if t >= end:
                break
            for out in resampler.resample(frame):
                # Trim the first and last frame to the exact range, sample-accurately.
                arr = out.to_ndarray()
                lo = max(0, int(round((w.audio_start - t) * out.sample_rate)))
                hi = min(arr.shape[1], int(round((end - t) * out.sample_rate)))
                if hi <= lo:
                    continue
                if lo or hi < arr.shape[1]:
                    arr = np.ascontiguousarray(arr[:, lo:hi])
                    out = av.AudioFrame.from_ndarray(arr, format="fltp", layout=aout.layout.name)
                    out.sample_rate = aout.rate
                if pts is None:  # audio that starts after the first video frame keeps its delay
                    pts = max(0, round((t + lo / out.sample_rate - w.audio_start) * aout.rate))
                if pcm:  # PCM takes packed 16-bit samples; the trimming above works on planar floats
                    out = _s16(out)
                out.pts = pts
                out.time_base = Fraction(1, aout.rate)
                pts += out.samples
                for packet in aout.encode(out):
                    self._put(packet)
        for packet in aout.encode(None):
            self._put(packet)


def _s16(frame: av.AudioFrame) -> av.AudioFrame:
    """A planar float frame as packed 16-bit samples (what pcm_s16le takes), sample for sample."""
    planar = frame.to_ndarray()  # (channels, samples), floats in [-1, 1]
    packed = np.clip(np.round(planar.T * 32767.0), -32768, 32767).astype(np.int16).reshape(1, -1)
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(packed), format="s16", layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out
