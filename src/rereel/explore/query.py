"""Turn what a user types after `rereel similar` into a query vector in the library's space.

A query is one of: a shot id (`shot:42`, `#42`), a video time range (`clip.mp4@12.5-15`), an
image file, a video file, or words. A video the library already holds is read from the
catalog (same features, no decoding); any other video goes through the indexer's own
`analyse_video`, so a query is sampled and embedded exactly as the archive was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rereel.encoders import Encoder, create_encoder, l2_normalise
from rereel.errors import MediaError, RereelError
from rereel.explore.footage import parse_shot_id, parse_time_range, range_footage, shot_footage
from rereel.explore.words import ClassMatch, class_query, effnet_classifier, match_classes, shortened
from rereel.library import Library, analyse_video
from rereel.library.catalog import shot_vector
from rereel.media import VIDEO_EXTENSIONS, fingerprint, probe
from rereel.media.image import IMAGE_EXTENSIONS


@dataclass
class Query:
    vector: np.ndarray  # unit vector in the library's shot space
    kind: str  # "shot", "range", "video", "image", "words"
    description: str
    exclude: set[int] = field(default_factory=set)  # the query's own shots: never returned
    classes: list[ClassMatch] = field(default_factory=list)  # ImageNet classes a word query used


def library_encoder(lib: Library, device: str | None = None) -> Encoder:
    """The encoder that made the library's vectors, checked against its signature."""
    name = lib.encoder_name
    if name is None:
        lib.require_content()
    if name == "clip":
        import rereel.encoders.clip  # noqa: F401  (registers the optional encoder)
    encoder = create_encoder(name, device=device)
    lib.require_encoder(encoder.signature)
    return encoder


def _exists(path: Path) -> bool:
    """Path.exists(), except that words are not paths: a long phrase is a name too long for the
    OS (OSError), and a NUL byte a ValueError; either way it is no file."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


class QueryResolver:
    """Builds queries for one library; the encoder is loaded only when a query needs it."""

    def __init__(self, lib: Library, device: str | None = None):
        self.lib = lib
        self.device = device
        self._encoder: Encoder | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = library_encoder(self.lib, self.device)
        return self._encoder

    def resolve(self, text: str) -> Query:
        text = text.strip()
        if not text:
            raise RereelError("empty query")
        shot_id = parse_shot_id(text)
        if shot_id is not None:
            return self.shot(shot_id)
        parsed = parse_time_range(text)
        if parsed is not None and (_exists(parsed[0]) or parsed[0].suffix.lower() in VIDEO_EXTENSIONS):
            return self.video(*parsed)
        path = Path(text)
        if _exists(path) or path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
            if not _exists(path):
                raise MediaError(path, "no such file")
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                return self.image(path)
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                return self.video(path, 0.0, None)
            try:  # an unknown extension: whatever opens it
                return self.image(path)
            except MediaError:
                return self.video(path, 0.0, None)
        return self.words(text)

    # -- the kinds of query -------------------------------------------------------------------
    def shot(self, shot_id: int) -> Query:
        footage = shot_footage(self.lib.catalog, shot_id)
        try:
            vector = self.lib.vectors("shots").vector(shot_id)
        except RuntimeError:  # FAISS: not in the index loaded at start (the web app rebuilds it shortly)
            raise RereelError(f"shot #{shot_id} was indexed after the vector index was loaded; "
                              "try again in a few seconds") from None
        return Query(l2_normalise(vector).astype(np.float32), "shot", footage.label, exclude={shot_id})

    def image(self, path: Path) -> Query:
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                # The whole picture squeezed to the network's input, as the indexer does with frames.
                rgb = np.asarray(im.resize(self.encoder.input_size, Image.Resampling.BOX))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:  # bomb: over Pillow's pixel cap
            reason = "not a readable image" if isinstance(e, UnidentifiedImageError) else f"cannot read the image ({e})"
            raise MediaError(path, reason) from None
        vector = self.encoder.embed(rgb[None]).embedding[0]
        return Query(l2_normalise(vector).astype(np.float32), "image", path.name)

    def video(self, path: Path, start: float, end: float | None) -> Query:
        footage = range_footage(path, start, end)
        times, vectors, own_shots = self._video_frames(path)
        inside = (times >= footage.start - 1e-6) & (times < footage.end - 1e-6)
        if not inside.any():  # a range shorter than the sampling step: the nearest sampled frame
            inside = np.zeros(len(times), bool)
            inside[int(np.argmin(np.abs(times - (footage.start + footage.end) / 2)))] = True
        exclude = {sid for sid, s, e in own_shots if s < footage.end and e > footage.start}
        whole = start == 0.0 and end is None
        kind, text = ("video", path.name) if whole else ("range", footage.label)
        return Query(shot_vector(vectors[inside]), kind, text, exclude=exclude)

    def _video_frames(self, path: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float, float]]]:
        """(sample times, frame vectors, [(shot id, start, end)] if the library holds the video)."""
        known = self.lib.catalog.video_by_fingerprint(fingerprint(path))
        if known is not None:
            shots = self.lib.catalog.shots(known["id"])
            times, vectors = [], []
            for s in shots:
                frames = self.lib.catalog.shot_frames(s["id"])
                times.append(frames["time"])
                vectors.append(frames["embedding"])
            return np.concatenate(times), np.concatenate(vectors), [(s["id"], s["start"], s["end"]) for s in shots]
        info = probe(path)
        records = analyse_video(path, self.encoder, "content", info.fps)
        frames = [f for r in records for f in r.frames]
        return np.array([f.time for f in frames]), np.stack([f.embedding for f in frames]), []

    def words(self, text: str) -> Query:
        self.lib.require_content()
        name = self.lib.encoder_name
        if name == "effnet-lite0":
            # The classifier rows live in the same 1280-d space as the shot vectors: no encoder run needed.
            self.lib.require_encoder(self._effnet_signature())
            matches = match_classes(text)
            vector = class_query(matches, effnet_classifier())
            return Query(vector, "words", shortened(text), classes=matches)
        return Query(l2_normalise(self.encoder.embed_text(text)).astype(np.float32), "words", shortened(text))

    @staticmethod
    def _effnet_signature() -> str:
        from rereel.encoders.effnet import EffNetLite0

        return f"effnet-lite0@{EffNetLite0.version}"
