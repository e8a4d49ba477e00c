"""Small browser-playable pieces of footage, made on demand and cached on disk.

Archive files come in any container (AVI, WebM, MKV...) that a browser may not play, and whole
films are too big to send for a two-second hover; so each preview is a short H.264 MP4 cut from
one seek, kept under the app's work folder and reused. A still frame (the mirror's match) is
a JPEG decoded from one seek.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from rereel.explore.footage import Footage, footage_frames
from rereel.explore.pairs import TARGET_FIT, pair_stream, side_size
from rereel.media import VideoWriter, decode_frames, probe
from rereel.media.image import even, jpeg

PREVIEW_WIDTH = 320
PREVIEW_SECONDS = 8.0  # a hover shows the start of a long shot, not all of it
PREVIEW_RATE = 24.0


class Previews:
    def __init__(self, cache: Path):
        self.cache = cache
        self.cache.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._frames: OrderedDict[tuple, bytes] = OrderedDict()  # recent still frames, for the mirror

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def clip(self, footage: Footage, *, pair: Footage | None = None, width: int = PREVIEW_WIDTH,
             seconds: float = PREVIEW_SECONDS) -> Path:
        """An MP4 of `footage` (beside `pair`, as long as `footage`, when given), made once."""
        key = repr((str(footage.path), round(footage.start, 3), round(footage.end, 3),
                    pair and (str(pair.path), round(pair.start, 3)), width, seconds))
        name = hashlib.blake2b(key.encode(), digest_size=10).hexdigest() + ".mp4"
        path = self.cache / name
        with self._lock(name):  # two hovers on one shot make it once
            if path.exists():
                return path
            w, h = side_size(footage.path, width)
            rate = min(PREVIEW_RATE, probe(footage.path).fps or PREVIEW_RATE)
            with VideoWriter(path, w * (2 if pair else 1), h, rate, crf=26) as writer:
                if pair:
                    frames = pair_stream(footage, pair, rate, w, h, seconds)
                else:
                    frames = footage_frames(footage, rate, w, h, TARGET_FIT, seconds)
                for frame in frames:
                    writer.write(frame)
        return path

    def frame(self, path: Path, time: float, width: int = 480) -> bytes:
        """The frame shown at `time` seconds, as a JPEG `width` wide; the last 256 are kept."""
        key = (str(path), round(time, 2), width)
        with self._guard:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        shown = None
        for decoded in decode_frames(path, start=max(0.0, time - 0.5), end=time + 0.5):
            if shown is None or decoded.time <= time + 1e-3:
                shown = decoded
            if decoded.time > time:
                break
        if shown is None:
            raise FileNotFoundError(f"{path}: no frame near {time:.2f} s")
        sw, sh = shown.display_size
        data = jpeg(shown.rgb(even(width), even(width * sh / sw)))
        with self._guard:
            self._frames[key] = data
            if len(self._frames) > 256:
                self._frames.popitem(last=False)
        return data
