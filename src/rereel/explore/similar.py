"""Rank the library's shots against a query vector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rereel.explore.footage import Footage, shot_footage
from rereel.explore.query import Query
from rereel.library import Library


@dataclass(frozen=True)
class Hit:
    footage: Footage
    score: float  # cosine with the query


def similar_shots(lib: Library, query: Query, top: int, min_seconds: float = 0.0) -> list[Hit]:
    """The `top` shots nearest the query, longest-enough ones only, the query's own shots left out.

    Example queries (a shot, a range, an image) are scored by cosine around the archive's mean:
    the encoder's ReLU features share a large positive component, so plain cosines of any two
    shots bunch together (0.43-0.47 for a water clip against everything); measured from the
    archive's mean, what makes shots differ decides. Word queries are classifier directions,
    not points in the space, and keep the plain inner product. Both are exact (library/search.py).
    """
    # Filtering after the search keeps --min-seconds and the exclusions exact however many shots
    # they remove: the search is asked again for more until enough are left or none remain.
    count = lib.vectors("shots").count
    k = top + len(query.exclude)
    present: dict[Path, bool] = {}  # a video moved or deleted since indexing: nothing could show it
    while True:
        scores, ids = lib.search(query.vector, k, centred=query.kind != "words")
        hits = []
        for score, shot_id in zip(scores[0], ids[0]):
            if shot_id < 0 or int(shot_id) in query.exclude:
                continue
            footage = shot_footage(lib.catalog, int(shot_id))
            if footage.duration + 1e-6 < min_seconds:
                continue
            if footage.path not in present:
                present[footage.path] = footage.path.exists()
            if not present[footage.path]:
                continue
            hits.append(Hit(footage, float(score)))
            if len(hits) >= top:
                return hits
        if k >= count:
            return hits
        k *= 4


def best_window(lib: Library, footage: Footage, query_vector: np.ndarray, seconds: float) -> tuple[float, float]:
    """The `seconds` of a shot centred on its sampled frame most like the query.

    A long shot trimmed to its start may miss what matched (the flower opens at the end);
    the frame vectors say where in the shot the likeness is.
    """
    if footage.duration <= seconds or footage.shot_id is None:
        return footage.start, min(footage.end, footage.start + seconds)
    frames = lib.catalog.shot_frames(footage.shot_id)
    best = float(frames["time"][int(np.argmax(frames["embedding"] @ query_vector))])
    start = min(max(footage.start, best - seconds / 2), footage.end - seconds)
    return start, start + seconds
