"""Write H.264 + AAC MP4 files with PyAV, atomically: a temporary name, renamed when complete."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rereel.errors import MediaError
from rereel.media.probe import open_container


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
    """Encode RGB frames (H, W, 3 uint8) to an MP4; optionally mux audio from another file.

    Output goes to `.<name>.<pid>.partial.mp4` beside `path` (hidden, unique per process, so two
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
    ):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial.mp4")
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.rate = as_rate(fps)
        self.audio_from = Path(audio_from) if audio_from else None
        self.audio_start, self.audio_end = audio_start, audio_end
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.tmp), "w", format="mp4")
        self._v = self._out.add_stream("libx264", rate=self.rate)
        self._v.width, self._v.height = self.width, self.height
        self._v.pix_fmt = "yuv420p"
        self._v.options = {"crf": str(crf), "preset": preset}
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
        self._a = self._out.add_stream("aac", rate=rate)
        self._a.bit_rate = 192_000
        self._a.layout = "stereo" if (ain.codec_context.channels or 2) >= 2 else "mono"

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
