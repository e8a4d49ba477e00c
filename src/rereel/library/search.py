"""One vector search over a library: exact or approximate, plain or centred, shots or frames.

`Library.search(queries, k, kind="shots", centred=False, approximate=False)` is the one way in;
`VectorSearch` holds what it needs for one kind, built once per opened library:

* exact, plain: the flat FAISS index of vectors.py (inner product = cosine on unit vectors);
* exact, centred: cosine around the archive's mean, scored in numpy over the flat index's
  vectors (the encoder's ReLU features share a large positive component, so plain cosines of
  any two shots bunch together; measured from the mean, what makes shots differ decides). The
  centred copy is made on the first centred search and kept: one more copy of the vectors;
* approximate: an inverted-file (IVF) index of the same vectors and ids, sqrt(N) lists, PROBES
  of them read per query. It is cached on disk beside the flat index (`shots.ivf.faiss` and its
  `.json`), checked against the catalog as the flat one is, new rows appended, and trained
  again when the kind has more than doubled since. Only plain search is approximate: centring
  would need a second, centred IVF, since |v - mean| differs from vector to vector.

`approximate=None` chooses: approximate above APPROXIMATE_ABOVE vectors, exact below. The
numbers behind it (and PROBES) are in bench/bench_webcam.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rereel.library.catalog import Catalog
from rereel.library.vectors import VectorIndex, locked, save_index

APPROXIMATE_ABOVE = 20_000  # vectors; a flat scan of more costs the mirror its 50 ms budget
PROBES = 32  # inverted lists read per query: the flat index's first place 99% of the time at 100k
RETRAIN_GROWTH = 2.0  # trained again when the kind has grown past this times its size at training
_CHUNK = 16384


class VectorSearch:
    """Search over one kind of vectors ("shots" or "frames"); see the module docstring.

    `root` and `catalog` (with `kind`, `encoder`) let the approximate index be cached on disk;
    without them it is built in memory, once per VectorSearch.
    """

    def __init__(self, flat: VectorIndex, *, root: Path | None = None, catalog: Catalog | None = None,
                 kind: str = "shots", encoder: str = "", approximate_above: int = APPROXIMATE_ABOVE):
        self.flat = flat
        self.root, self.catalog, self.kind, self.encoder = root, catalog, kind, encoder
        self.approximate_above = approximate_above
        self._ivf = None
        self._centred: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (ids, mean, centred rows)

    @property
    def count(self) -> int:
        return self.flat.count

    @property
    def dim(self) -> int:
        return self.flat.dim

    def vector(self, row_id: int) -> np.ndarray:
        return self.flat.vector(row_id)

    def is_approximate(self, approximate: bool | None = None) -> bool:
        """Whether a search with this `approximate` argument goes through the IVF index."""
        return self.count > self.approximate_above if approximate is None else bool(approximate)

    def search(self, queries: np.ndarray, k: int, *, centred: bool = False,
               approximate: bool | None = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest for each query row, best first; ids are catalog row ids, -1 pads.

        `centred`: cosines around the mean of the kind's vectors (exact only). `approximate`:
        False exact, True the IVF index, None the IVF index above `approximate_above` vectors.
        """
        if centred:
            if approximate:
                raise ValueError("centred search is exact only (approximate=False or None)")
            return self._centred_search(queries, k)
        if not self.is_approximate(approximate) or self.count == 0:
            return self.flat.search(queries, k)
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        return self.approximate_index().search(q, max(1, min(k, self.count)))

    # -- centred ------------------------------------------------------------------------------
    def _centred_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(queries)
        k = max(1, min(k, self.count))
        if self.count == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        ids, mean, centred = self._centred_rows()
        scores_out = np.empty((len(q), k), np.float32)
        ids_out = np.empty((len(q), k), np.int64)
        for row, query in enumerate(q):
            c = query - mean
            scores = centred @ (c / max(np.linalg.norm(c), 1e-8))
            order = np.argsort(-scores, kind="stable")[:k]  # ties keep catalog order
            scores_out[row], ids_out[row] = scores[order], ids[order]
        return scores_out, ids_out

    def _centred_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._centred is None:
            ids, vectors = flat_contents(self.flat)
            mean = vectors.mean(0)
            centred = vectors - mean
            centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
            self._centred = (ids, mean, centred)
        return self._centred

    # -- approximate --------------------------------------------------------------------------
    def approximate_index(self):
        """The IVF index (faiss.IndexIVFFlat, catalog row ids), loaded or built on first use."""
        if self._ivf is None:
            if self.root is None or self.catalog is None:
                self._ivf = build_ivf(self.flat)
            else:
                with locked(self.root):
                    self._ivf = self._load_ivf()
        return self._ivf

    def _load_ivf(self):
        import faiss

        path = self.root / f"{self.kind}.ivf.faiss"
        meta_path = self.root / f"{self.kind}.ivf.faiss.json"
        generation = self.catalog.generation()
        ivf, meta = None, {}
        if path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                if (meta.get("generation") == generation and meta.get("encoder") == self.encoder
                        and meta.get("dim") == self.dim and self.count <= RETRAIN_GROWTH * int(meta["trained"])):
                    ivf = faiss.read_index(str(path))
                    held = np.sort(ivf_ids(ivf))
                    if ivf.d != self.dim or not np.array_equal(held, self.catalog.ids(self.kind, up_to=int(meta["max_id"]))):
                        ivf = None  # ahead of (or behind) its description: rebuilt rather than trusted
            except (ValueError, RuntimeError, KeyError, AttributeError, TypeError):
                ivf = None  # a damaged cache is rebuilt, never trusted
        ids, vectors = flat_contents(self.flat)
        if ivf is None:
            ivf, meta, added = build_ivf(self.flat), {"trained": self.count}, True
        else:
            new = ids > int(meta["max_id"])
            added = bool(new.any())
            if added:
                fresh, fresh_ids = vectors[new], ids[new]
                for at in range(0, len(fresh_ids), _CHUNK):
                    ivf.add_with_ids(np.ascontiguousarray(fresh[at:at + _CHUNK]), fresh_ids[at:at + _CHUNK])
        ivf.nprobe = PROBES
        if added:
            meta = {"generation": generation, "encoder": self.encoder, "dim": self.dim,
                    "max_id": int(ids.max()) if len(ids) else 0, "trained": int(meta["trained"])}
            save_index(ivf, path, meta_path, meta)
        return ivf


def flat_contents(flat: VectorIndex) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) a flat VectorIndex holds, in its order (catalog order); the vectors are a view."""
    import faiss

    n, dim = flat.count, flat.dim
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    inner = faiss.downcast_index(flat.index.index)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), n * dim).reshape(n, dim)  # a view: nothing copied
    return faiss.vector_to_array(flat.index.id_map), vectors


def build_ivf(flat: VectorIndex):
    """An inverted-file index holding the same vectors and ids as a flat `VectorIndex`."""
    import faiss

    ids, vectors = flat_contents(flat)
    n, dim = flat.count, flat.dim
    lists = max(1, int(math.sqrt(n)))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    # 40 vectors per list is what k-means needs (FAISS warns below 39); more only costs start-up.
    sample = np.random.default_rng(0).choice(n, min(n, 40 * lists), replace=False)
    ivf.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    for at in range(0, n, _CHUNK):
        ivf.add_with_ids(np.ascontiguousarray(vectors[at:at + _CHUNK]), ids[at:at + _CHUNK])
    ivf.nprobe = PROBES
    return ivf


def ivf_ids(ivf) -> np.ndarray:
    """Every id an IVF index holds (unsorted)."""
    import faiss

    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
             for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


@contextmanager
def one_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread in this thread, for a single query beside a busy network.

    FAISS spreads even a single query over its OpenMP threads, and on two cores they fight ONNX
    Runtime's worker, which spins on after each frame: measured for the mirror, embed 21 ms +
    flat 10k search 23 ms with two threads, 12 + 3.6 ms with one. The setting is per thread (an
    OpenMP ICV): other threads keep theirs.
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
