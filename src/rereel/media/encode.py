"""Write videos with PyAV, atomically: a temporary name, renamed when complete.

Two containers, three codecs: H.264 + AAC in MP4 (to watch and share), and for editors an
intermediate they can grade, in MOV with the audio as 16-bit PCM: ProRes 422 (FFmpeg's
prores_ks) or DNxHR HQ (dnxhd with the dnxhr_hq profile), both 4:2:2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rereel.errors import MediaError, RereelError
from rereel.media.probe import open_container


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
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial{suffix}")
        self.width, self.height = width - width % 2, height - height % 2  # subsampled chroma needs even sizes
        problem = size_problem(self.codec_name, self.width, self.height)
        if problem:
            raise MediaError(self.path, problem)
        self.rate = as_rate(fps)
        self.audio_from = Path(audio_from) if audio_from else None
        self.audio_start, self.audio_end = audio_start, audio_end
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.tmp), "w", format=suffix[1:])
        self._v = self._out.add_stream(self.codec.encoder, rate=self.rate)
        self._v.width, self._v.height = self.width, self.height
        self._v.pix_fmt = self.codec.pix_fmt
        options = dict(self.codec.options)
        if self.codec.encoder == "libx264":
            options |= {"crf": str(crf), "preset": preset}
        self._v.options = options
        self._v.codec_context.time_base = 1 / self.rate
        self._a = None
        self._audio_in = None
        if self.audio_from is not None:
            self._open_audio()

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
        ref = src.streams.video[0] if src.streams.video else ain
        self._origin = float(ref.start_time * ref.time_base) if ref.start_time is not None else 0.0
        rate = ain.codec_context.sample_rate or 48000
        self._a = self._out.add_stream(self.codec.audio, rate=rate)
        if self.codec.audio == "aac":
            self._a.bit_rate = 192_000
        self._a.layout = "stereo" if (ain.codec_context.channels or 2) >= 2 else "mono"
        self._a.format = self.codec.audio_format

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[0] != self.height or rgb.shape[1] != self.width:
            rgb = rgb[: self.height, : self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        for packet in self._v.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def _mux_audio(self) -> None:
        src, ain = self._audio_in, self._audio_in.streams.audio[0]
        if self.audio_start > 0:
            src.seek(int((self.audio_start + self._origin) * 1_000_000), backward=True)
        resampler = av.AudioResampler(format="fltp", layout=self._a.layout.name, rate=self._a.rate)
        pcm = self.codec.audio_format == "s16"
        # The audio lasts as long as the video written, whatever the source's length.
        end = self.audio_start + self.frames / float(self.rate)
        if self.audio_end is not None:
            end = min(end, self.audio_end)
        pts = None
        try:
            for frame in src.decode(ain):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base) - self._origin
                dur = frame.samples / frame.sample_rate
                if t + dur <= self.audio_start:
                    continue
                if t >= end:
                    break
                for out in resampler.resample(frame):
                    # Trim the first and last frame to the exact range, sample-accurately.
                    arr = out.to_ndarray()
                    t0 = t
                    lo = max(0, int(round((self.audio_start - t0) * out.sample_rate)))
                    hi = min(arr.shape[1], int(round((end - t0) * out.sample_rate)))
                    if hi <= lo:
                        continue
                    if lo or hi < arr.shape[1]:
                        arr = np.ascontiguousarray(arr[:, lo:hi])
                        out = av.AudioFrame.from_ndarray(arr, format="fltp", layout=self._a.layout.name)
                        out.sample_rate = self._a.rate
                    if pts is None:  # audio that starts after the first video frame keeps its delay
                        pts = max(0, round((t + lo / out.sample_rate - self.audio_start) * self._a.rate))
                    if pcm:  # PCM takes packed 16-bit samples; the trimming above works on planar floats
                        out = _s16(out)
                    out.pts = pts
                    out.time_base = Fraction(1, self._a.rate)
                    pts += out.samples
                    for packet in self._a.encode(out):
                        self._out.mux(packet)
        except av.error.FFmpegError as e:
            raise MediaError(self.audio_from, f"cannot decode its audio ({str(e).strip()})") from None
        for packet in self._a.encode(None):
            self._out.mux(packet)

    def close(self) -> Path:
        """Flush, add the audio, and move the finished file into place."""
        for packet in self._v.encode(None):
            self._out.mux(packet)
        if self._a is not None:
            self._mux_audio()
            self._audio_in.close()
        self._out.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        if self._audio_in is not None:
            self._audio_in.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _s16(frame: av.AudioFrame) -> av.AudioFrame:
    """A planar float frame as packed 16-bit samples (what pcm_s16le takes), sample for sample."""
    planar = frame.to_ndarray()  # (channels, samples), floats in [-1, 1]
    packed = np.clip(np.round(planar.T * 32767.0), -32768, 32767).astype(np.int16).reshape(1, -1)
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(packed), format="s16", layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out
