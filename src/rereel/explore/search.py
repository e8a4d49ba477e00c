"""Rank the library's shots against a query vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rereel.explore.footage import Footage, shot_footage
from rereel.explore.query import Query
from rereel.library import Library


@dataclass(frozen=True)
class Hit:
    footage: Footage
    score: float  # cosine with the query


def centred_scores(lib: Library, query: Query) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of every shot, best first: cosine around the archive's mean for examples.

    The encoder's ReLU features share a large positive component, so plain cosines of any two
    shots bunch together (0.43-0.47 for a water clip against everything); measured from the
    archive's mean, what makes shots differ decides. Word queries are classifier directions,
    not points in the space, and keep the plain inner product.
    """
    ids, vectors = lib.catalog.vectors("shots")
    if not len(ids):
        return np.zeros(0, np.float32), ids
    if query.kind == "words":
        scores = vectors @ query.vector
    else:
        mean = vectors.mean(0)
        centred = vectors - mean
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
        q = query.vector - mean
        scores = centred @ (q / max(np.linalg.norm(q), 1e-8))
    order = np.argsort(-scores, kind="stable")
    return scores[order], ids[order]


def similar_shots(lib: Library, query: Query, top: int, min_seconds: float = 0.0) -> list[Hit]:
    """The `top` shots nearest the query, longest-enough ones only, the query's own shots left out."""
    # Every shot scored in one matrix product; filtering afterwards keeps --min-seconds and the
    # exclusions exact however many shots they remove.
    scores, ids = centred_scores(lib, query)
    hits = []
    for score, shot_id in zip(scores, ids):
        if shot_id < 0 or int(shot_id) in query.exclude:
            continue
        footage = shot_footage(lib.catalog, int(shot_id))
        if footage.duration + 1e-6 < min_seconds:
            continue
        hits.append(Hit(footage, float(score)))
        if len(hits) >= top:
            break
    return hits


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
