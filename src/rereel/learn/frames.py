"""Frames for training, streamed from the media layer; nothing is ever written to disk.

Two ways to feed a film to a model, chosen by memory (`FilmFrames`):

* held: when every sampled frame fits in the memory budget at model size as uint8
  (256x144 is 110 KB a frame, so 2 GiB holds about 19,000 frames: 13 minutes of film at
  every frame, a feature film at every 9th), the film is decoded once and each epoch
  visits every frame in a fresh random order. This is the true shuffle SGD wants, and it
  saves decoding the film again every epoch, which on a small CPU costs more than a step.
* streamed: otherwise each epoch decodes the films again, in a random order, each from a
  random point (wrapping round), through a shuffle buffer as large as the budget allows.
  Neighbouring frames of a film are nearly identical, so the buffer is what keeps a batch
  from being twenty copies of one shot; the random start point moves the buffer's
  windows from epoch to epoch.

Both orders are a pure function of (seed, epoch), so a resumed run replays the same
order and skips the batches already trained on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rereel.errors import MediaError, RereelError
from rereel.media import DecodedFrame, decode_frames, find_videos, probe
from rereel.media.image import IMAGE_EXTENSIONS, centre_crop, cover_size


def cover(decoded: DecodedFrame, width: int, height: int) -> np.ndarray:
    """The frame scaled (area filter) to cover width x height, centre-cropped: no distortion."""
    return decoded.fit(width, height, "cover")


def short_side(decoded: DecodedFrame, side: int) -> np.ndarray:
    """The frame scaled (area filter) so its shorter side is `side`, aspect kept."""
    sw, sh = decoded.display_size
    scale = side / min(sw, sh)
    return decoded.rgb(max(side, round(sw * scale)), max(side, round(sh * scale)))


def check_videos(paths: list[Path]) -> list[Path]:
    """The video files the user named (folders expanded); MediaError for any that is no video."""
    videos = find_videos([Path(p) for p in paths])
    if not videos:
        raise RereelError(f"no video files found in {', '.join(str(p) for p in paths)}")
    for v in videos:
        info = probe(v)  # raises MediaError: missing, unreadable, not a video
        if info.width == 0 or info.height == 0:
            raise MediaError(v, "no video stream")
    return videos


def frame_at(spec: str, width: int, height: int) -> np.ndarray:
    """A frame given as an image file or as VIDEO@SECONDS, covered to width x height."""
    from rereel.learn.toolkit import load_image

    path, _, at = spec.rpartition("@")
    if path and not _is_number(at) and Path(path).is_file() and not Path(spec).exists():
        raise RereelError(f"{spec}: {at!r} is not a time in a video (seconds from its start)")  # not "no such file"
    if path and _is_number(at):
        seconds = float(at)
        if not (math.isfinite(seconds) and seconds >= 0):
            raise RereelError(f"{spec}: {at!r} is not a time in a video (seconds from its start)")
        info = probe(Path(path))  # raises MediaError: missing, unreadable, not a video
        if info.duration and seconds >= info.duration:  # decoding would just find nothing
            raise MediaError(path, f"{seconds:g} s is past the end (the video lasts {info.duration:.2f} s)")
        # The frame on screen at that time: the last one that starts by then. (The first one
        # starting at or after it was asked for before, and a time inside the last frame found
        # none: "corrupt or truncated".) Decoded from a second before, the seek's entry point.
        shown = None
        if seconds > 1.0:
            try:
                for decoded in decode_frames(Path(path), start=seconds - 1.0, end=seconds + 1e-6):
                    shown = decoded
            except MediaError:  # no frame starts in that second: one is held longer (a slideshow)
                pass
        if shown is None:  # from the start, then
            for decoded in decode_frames(Path(path), end=seconds + 1e-6):
                shown = decoded
        if shown is None:
            raise MediaError(path, f"no frame at {at} s")
        return cover(shown, width, height)
    image = load_image(Path(spec))
    return _cover_array(image, width, height)


def _cover_array(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    sw, sh = cover_size(width, height, w, h)
    return centre_crop(np.asarray(Image.fromarray(image).resize((sw, sh), Image.Resampling.BOX)), width, height)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class FilmFrames:
    """Every `every`-th frame of some films at model size, served in shuffled batches."""

    def __init__(self, videos: list[Path], width: int, height: int, every: int = 1, budget_mb: int = 2048):
        self.videos, self.width, self.height, self.every = list(videos), width, height, max(1, every)
        frame_bytes = width * height * 3
        self.estimate = sum(max(1, probe(v).frames // self.every) for v in self.videos)
        self.capacity = max(64, budget_mb * 2**20 // frame_bytes)
        self.held = self.estimate <= self.capacity
        self.frames: np.ndarray | None = self._decode_all() if self.held else None
        self.count = len(self.frames) if self.held else self.estimate

    def _decode_all(self) -> np.ndarray:
        out = np.empty((int(self.estimate * 1.05) + 16, self.height, self.width, 3), np.uint8)
        n = 0
        for video in self.videos:
            for decoded in decode_frames(video):
                if decoded.index % self.every:
                    continue
                if n == len(out):  # the header's frame count was short: grow
                    out = np.concatenate([out, np.empty_like(out[: len(out) // 2 + 1])])
                out[n] = cover(decoded, self.width, self.height)
                n += 1
        return out[:n]

    def batches_per_epoch(self, batch: int) -> int:
        return max(1, self.count // batch)

    def epoch(self, epoch: int, seed: int, batch: int) -> Iterator[np.ndarray]:
        """uint8 batches (B, H, W, 3) in this epoch's order; the last partial batch is dropped."""
        rng = np.random.default_rng([seed, epoch])
        if self.held:
            order = rng.permutation(len(self.frames))
            for i in range(0, len(order) - batch + 1, batch):
                yield self.frames[np.sort(order[i : i + batch])]  # sorted: faster gather, same set
            return
        pending: list[np.ndarray] = []
        for frame in self._shuffled_stream(rng):
            pending.append(frame)
            if len(pending) == batch:
                yield np.stack(pending)
                pending = []

    def _shuffled_stream(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        buffer: list[np.ndarray] = []
        for frame in self._stream(rng):
            if len(buffer) < self.capacity:
                buffer.append(frame)
                continue
            i = rng.integers(len(buffer))
            out, buffer[i] = buffer[i], frame
            yield out
        for i in rng.permutation(len(buffer)):
            yield buffer[i]

    def _stream(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        for v in rng.permutation(len(self.videos)):
            video = self.videos[v]
            start = float(rng.uniform(0, max(0.0, probe(video).duration - 1)))
            n = 0
            for part in (decode_frames(video, start=start), decode_frames(video, end=start)):
                for decoded in part:
                    if n % self.every == 0:
                        yield cover(decoded, self.width, self.height)
                    n += 1


def sample_corpus(paths: list[Path], side: int, max_frames: int = 2000) -> list[np.ndarray]:
    """Images and video frames from files and folders, scaled so the short side is `side`.

    Every image is taken (up to `max_frames`); the rest of the budget is shared among the
    videos by duration and filled with evenly spaced frames, so a long film does not crowd
    out a short clip's look and no frame is the same as its neighbour.
    """
    images, videos = [], []
    for p in map(Path, paths):
        if not p.exists():
            raise RereelError(f"{p}: no such file or folder")
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            ext = f.suffix.lower()
            if ext in IMAGE_EXTENSIONS:
                images.append(f)
            elif p.is_file() or ext in _video_exts():
                videos.append(f)
    if not images and not videos:
        raise RereelError(f"no images or videos found in {', '.join(map(str, paths))}")
    from rereel.learn.toolkit import load_image

    frames = [_short_side_array(load_image(f), side) for f in images[:max_frames]]
    left = max_frames - len(frames)
    infos = [probe(v) for v in videos]
    total = sum(max(i.duration, 0.1) for i in infos)
    for video, info in zip(videos, infos):
        quota = max(1, round(left * max(info.duration, 0.1) / total)) if total else 0
        step = max(1, math.ceil(max(info.frames, 1) / quota))
        for decoded in decode_frames(video):
            if decoded.index % step == 0:
                frames.append(short_side(decoded, side))
    if not frames:
        raise RereelError(f"no frames could be read from {', '.join(map(str, paths))}")
    return frames


def _video_exts() -> frozenset[str]:
    from rereel.media import VIDEO_EXTENSIONS

    return VIDEO_EXTENSIONS


def _short_side_array(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / min(h, w)
    return _cover_array(image, max(side, round(w * scale)), max(side, round(h * scale)))
