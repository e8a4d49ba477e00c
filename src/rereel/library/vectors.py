"""FAISS indexes over shot and frame vectors, kept as a cache of the catalog.

Vectors are L2-normalised, so inner product = cosine; a flat index is exact and, at a few
hundred thousand vectors, fast enough on two cores. The files carry the catalog generation
and the highest id they hold: new rows are appended, any removal triggers a rebuild.

The .json is never trusted alone: a crash between the two renames of a save, or two savers
at once, can leave an index ahead of its description, and appending to it again would give
duplicate hits. So the ids in the loaded index are compared with the catalog's, and load and
save run under a lock file in the library folder.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
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


@contextmanager
def locked(root: Path):
    """An exclusive lock on `vectors.lock`: one process at a time reads-then-writes the cache.

    A library on a read-only disk has no lock file to take; it is read without one (and, with
    nothing able to write, nothing can race).
    """
    try:
        fd = os.open(root / "vectors.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _agrees(index, catalog: Catalog, kind: str, max_id: int) -> bool:
    """Whether the index holds exactly the catalog's rows with id <= max_id, each once."""
    import faiss

    held = np.sort(faiss.vector_to_array(index.id_map)) if index.ntotal else np.zeros(0, np.int64)
    return np.array_equal(held, catalog.ids(kind, up_to=max_id))


def load_vectors(root: Path, catalog: Catalog, kind: str, dim: int, encoder: str) -> VectorIndex:
    """The synced FAISS index of `kind` ("shots" or "frames"), saved back if it changed."""
    with locked(root):
        return _load(root, catalog, kind, dim, encoder)


def _load(root: Path, catalog: Catalog, kind: str, dim: int, encoder: str) -> VectorIndex:
    import faiss

    path, meta_path = root / f"{kind}.faiss", root / f"{kind}.faiss.json"
    generation = catalog.generation()
    index, max_id = None, 0
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") == generation and meta.get("encoder") == encoder and meta.get("dim") == dim:
                index, max_id = faiss.read_index(str(path)), int(meta["max_id"])
                if index.d != dim or not _agrees(index, catalog, kind, max_id):
                    index = None  # ahead of (or behind) its description: rebuild rather than duplicate
        except (ValueError, RuntimeError, KeyError, AttributeError):
            index = None  # a damaged cache is rebuilt from the catalog, never trusted
    rebuilt = index is None
    if index is None:
        index, max_id = _new_index(dim), 0
    ids, vecs = catalog.embeddings(kind, after_id=max_id)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids)
        max_id = int(ids.max())
        save_index(index, path, meta_path, {"generation": generation, "encoder": encoder, "dim": dim, "max_id": max_id})
    elif rebuilt:
        save_index(index, path, meta_path, {"generation": generation, "encoder": encoder, "dim": dim, "max_id": max_id})
    return VectorIndex(index, dim)


def save_index(index, path: Path, meta_path: Path, meta: dict) -> None:
    # Index first, then its description. A crash between the two renames leaves an index
    # ahead of its description; the next load finds ids it was not told of and rebuilds.
    import faiss

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)
