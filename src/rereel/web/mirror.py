"""The webcam mirror: each frame a browser sends is answered with the archive frame most like it.

A frame is squeezed to the encoder's input with the indexer's own scaler, embedded, and
looked up among the library's shot vectors; within the best shot the sampled frame nearest
the query gives the time to show. A `MirrorSession` per connection holds the shown shot
against near-ties, so the mirror does not flicker between look-alike shots.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from rereel.encoders import Encoder
from rereel.errors import RereelError
from rereel.explore.query import library_encoder
from rereel.library import Catalog, Library, VectorIndex, VectorSearch
from rereel.library.search import APPROXIMATE_ABOVE, one_thread
from rereel.media.decode import frame_to_rgb

# Plain cosines, not centred as `rereel similar` ranks (why: docs/web.md, "The mirror's numbers").
TOP = 5  # shots fetched per frame: the best, and usually the shown one's score for free
# Hysteresis (see MirrorSession), tuned on noised webcam-like runs (docs/web.md).
MARGIN = 0.05  # cosine by which a new shot must beat the shown one to take over at once
HOLD = 3  # consecutive frames a new shot must come first to take over without that margin
MAX_SIDE = 4096  # a webcam frame larger than this is refused before it is decoded

# Above APPROXIMATE_ABOVE shots (library/search.py) a frame is searched through the library's
# inverted-file index, not a flat scan: the flat scan costs the 50 ms budget at 100k shots
# (docs/web.md, bench/bench_webcam.py).
FRAME_CACHE = 256  # shots whose sampled frames are kept in memory: the shown one is re-read every frame


class MirrorError(RereelError):
    """A webcam frame the mirror cannot use."""


@dataclass(frozen=True)
class MirrorMatch:
    shot_id: int  # the shot to show (held against near-ties when a session is given)
    video_id: int | None  # None without a catalog
    time: float | None  # seconds into the source video of the shot's sampled frame nearest the query
    score: float  # cosine of the query with the shown shot's vector
    best_shot_id: int  # this frame's own first place, which hysteresis may not show yet
    switched: bool  # the shown shot changed with this frame
    embed_ms: float  # resize + network
    search_ms: float  # shot index + the frame within the shot
    total_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def decode_jpeg(data: bytes) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a webcam frame (JPEG; PNG and WebP, which canvases also make, pass)."""
    if not data:
        raise MirrorError("webcam frame: empty message, expected a JPEG image")
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "WEBP")) as im:
            if max(im.size) > MAX_SIDE:
                raise MirrorError(f"webcam frame: {im.width}x{im.height} is larger than {MAX_SIDE} px a side")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        what = "not a JPEG image" if isinstance(e, UnidentifiedImageError) else f"damaged image ({e})"
        raise MirrorError(f"webcam frame: {what} ({len(data)} bytes)") from None


class MirrorSession:
    """The shot one connection shows, and how long a challenger has been ahead of it.

    Webcam noise reorders near-equal shots from frame to frame. The shown shot changes only
    when another beats it by `margin` (a clear change of scene), or comes first `hold`
    frames running (a slow drift): a flicker between two or three look-alikes seldom gets
    the same challenger first that often in a row, so the picture stays put.
    """

    def __init__(self, mirror: Mirror, *, margin: float = MARGIN, hold: int = HOLD):
        self.mirror = mirror
        self.margin = margin
        self.hold = hold
        self.shot_id: int | None = None
        self._challenger: int | None = None
        self._streak = 0

    def match(self, rgb: np.ndarray) -> MirrorMatch:
        return self.mirror.match(rgb, self)

    def choose(self, best_id: int, best_score: float, shown_score: float) -> int:
        """The shot to show, given this frame's best shot and the shown shot's score for it."""
        if self.shot_id is None or best_id == self.shot_id or best_score >= shown_score + self.margin:
            self._take(best_id)
            return best_id
        self._streak = self._streak + 1 if best_id == self._challenger else 1
        self._challenger = best_id
        if self._streak >= self.hold:
            self._take(best_id)
        return self.shot_id

    def _take(self, shot_id: int) -> None:
        self.shot_id, self._challenger, self._streak = shot_id, None, 0


class Mirror:
    """Matches webcam frames against a library's shots.

    With a catalog, match() reads a shot's sampled frames from it (then keeps them): call it
    from the thread that opened the catalog, or open it `shared` and serialise the calls, as
    the web app's lock does. One frame at a time also suits two cores, where two frames
    embedded at once only slow each other.
    """

    def __init__(self, encoder: Encoder, shots: VectorSearch | VectorIndex, catalog: Catalog | None = None, *,
                 flat_limit: int = APPROXIMATE_ABOVE):
        """`shots`: the library's `searcher("shots")` (its approximate index cached on disk), or a
        bare flat index, whose approximate copy is then built here when it holds over `flat_limit`."""
        if shots.count == 0:
            raise RereelError("the library has no shots to mirror; index footage with `rereel index`")
        self.encoder = encoder
        self.shots = shots if isinstance(shots, VectorSearch) else VectorSearch(shots, approximate_above=flat_limit)
        self.catalog = catalog
        if self.shots.is_approximate(None):
            self.shots.approximate_index()  # loaded (or built) now, not on the first frame
        encoder.load()  # the network too (an encoder may compile it at first use)
        self._frames: OrderedDict[int, tuple[int, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_library(cls, lib: Library, device: str | None = None) -> "Mirror":
        """The mirror of a library: the encoder that made it, its shot index and its catalog."""
        return cls(library_encoder(lib, device), lib.searcher("shots"), lib.catalog)

    def session(self, *, margin: float = MARGIN, hold: int = HOLD) -> MirrorSession:
        """Hysteresis state for one connection: `session.match(rgb)` per webcam frame."""
        return MirrorSession(self, margin=margin, hold=hold)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """An RGB uint8 frame of any size, squeezed whole to the network's input as the indexer does."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 [H, W, 3] frame, got {rgb.dtype} {rgb.shape}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        return frame_to_rgb(frame, *self.encoder.input_size)  # the indexer's helper: FFmpeg's area scaler

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """Unit vector of an RGB uint8 frame of any size."""
        return self.encoder.embed(self.prepare(rgb)[None]).embedding[0]

    def search(self, query: np.ndarray, k: int = TOP) -> tuple[np.ndarray, np.ndarray]:
        """(scores, shot ids) of the k shots nearest a unit query vector, best first."""
        with one_thread():  # one frame: more threads only fight the network's (see one_thread)
            scores, ids = self.shots.search(query, k, approximate=None)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def match(self, rgb: np.ndarray, session: MirrorSession | None = None) -> MirrorMatch:
        """The archive frame nearest an RGB uint8 webcam frame; with a session, held against near-ties."""
        start = time.perf_counter()
        query = self.embed(rgb)
        embedded = time.perf_counter()
        scores, ids = self.search(query)
        best_id, best_score = int(ids[0]), float(scores[0])  # FAISS gives numpy ints; SQLite wants int
        shot_id, score = best_id, best_score
        previous = session.shot_id if session is not None else None
        if session is not None:
            shown_score = best_score if previous is None else self._score(previous, query, scores, ids)
            shot_id = session.choose(best_id, best_score, shown_score)
            score = best_score if shot_id == best_id else shown_score
        video_id, when = self._frame(shot_id, query)
        done = time.perf_counter()
        return MirrorMatch(
            shot_id=shot_id,
            video_id=video_id,
            time=when,
            score=score,
            best_shot_id=best_id,
            switched=previous is not None and shot_id != previous,
            embed_ms=(embedded - start) * 1000,
            search_ms=(done - embedded) * 1000,
            total_ms=(done - start) * 1000,
        )

    def _score(self, shot_id: int, query: np.ndarray, scores: np.ndarray, ids: np.ndarray) -> float:
        hit = np.nonzero(ids == shot_id)[0]
        if len(hit):
            return float(scores[hit[0]])
        return float(self.shots.vector(shot_id) @ query)  # fell out of the top few: score it directly

    def _frame(self, shot_id: int, query: np.ndarray) -> tuple[int | None, float | None]:
        """(video id, time) of the shot's sampled frame nearest the query; (None, None) without a catalog."""
        if self.catalog is None:
            return None, None
        with self._lock:
            cached = self._frames.get(shot_id)
            if cached is None:
                row = self.catalog.shot(shot_id)
                if row is None:
                    raise RereelError(f"shot {shot_id} is in the vector index but not in the catalog")
                frames = self.catalog.shot_frames(shot_id)
                cached = (int(row["video_id"]), frames["time"], frames["embedding"])
                self._frames[shot_id] = cached
                if len(self._frames) > FRAME_CACHE:
                    self._frames.popitem(last=False)
            else:
                self._frames.move_to_end(shot_id)
        video_id, times, embeddings = cached
        return video_id, float(times[int(np.argmax(embeddings @ query))])
