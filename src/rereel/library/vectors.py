"""FAISS indexes over shot and frame vectors, kept as a cache of the catalog.

Vectors are L2-normalised, so inner product = cosine; a flat index is exact and, at a few
hundred thousand vectors, fast enough on two cores. The files carry the catalog generation
and the highest id they hold: new rows are appended, any removal triggers a rebuild.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rereel.library.catalog import Catalog

# faiss is imported where used: indexing never needs it, and it costs a second at start-up.


class VectorIndex:
    def __init__(self, index, dim: int):
        self.index = index
        self.dim = dim

    @property
    def count(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest for each query row; ids are catalog row ids, -1 pads."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.count))
        if self.count == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        return self.index.search(q, k)

    def vector(self, row_id: int) -> np.ndarray:
        return self.index.reconstruct(int(row_id))


def _new_index(dim: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def load_vectors(root: Path, catalog: Catalog, kind: str, dim: int, encoder: str) -> VectorIndex:
    """The synced FAISS index of `kind` ("shots" or "frames"), saved back if it changed."""
    import faiss

    path, meta_path = root / f"{kind}.faiss", root / f"{kind}.faiss.json"
    generation = catalog.generation()
    index, max_id = None, 0
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") == generation and meta.get("encoder") == encoder and meta.get("dim") == dim:
                index, max_id = faiss.read_index(str(path)), int(meta["max_id"])
        except (ValueError, RuntimeError, KeyError):
            index = None  # a damaged cache is rebuilt from the catalog, never trusted
    if index is None:
        index, max_id = _new_index(dim), 0
    ids, vecs = catalog.vectors(kind, after_id=max_id)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids)
        max_id = int(ids.max())
        _save(index, path, meta_path, {"generation": generation, "encoder": encoder, "dim": dim, "max_id": max_id})
    elif not path.exists():
        _save(index, path, meta_path, {"generation": generation, "encoder": encoder, "dim": dim, "max_id": max_id})
    return VectorIndex(index, dim)


def _save(index, path: Path, meta_path: Path, meta: dict) -> None:
    # Index first, then its description: a crash between the two leaves a stale description,
    # which the next load rejects and rebuilds from the catalog.
    import faiss

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)
