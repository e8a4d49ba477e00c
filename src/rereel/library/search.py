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

Above ON_DISK_ABOVE vectors a kind is searched by `DiskSearch` instead: no flat index, no
float held in memory. An IVF index of 8-bit scalar-quantised vectors, memory-mapped from
`shots.disk.faiss`, proposes candidates and they are scored exactly against the float
vectors in a file read row by row, never loaded whole (`shots.rows.f32`, catalog order;
`shots.rows.ids.npy`). Every plain search there is this one,
`approximate=False` included: exact search would read every float for each query. The
numbers behind the sizes and settings are in bench/bench_scale.py and docs/scale.md.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rereel.errors import RereelError
from rereel.library.catalog import Catalog
from rereel.library.vectors import VectorIndex, locked, save_index

APPROXIMATE_ABOVE = 20_000  # vectors; a flat scan of more costs the mirror its 50 ms budget
PROBES = 32  # inverted lists read per query: the flat index's first place 99% of the time at 100k
RETRAIN_GROWTH = 2.0  # trained again when the kind has grown past this times its size at training
_CHUNK = 16384

# Above this many vectors a kind is searched from disk (DiskSearch): a flat index of 200k
# 1280-d vectors already holds 1 GB, and loading it from the catalog twice that at its peak.
ON_DISK_ABOVE = 200_000
DISK_PQ_BYTES = 64  # PQ code size a vector, for a factory with {m} ("IVF{lists},PQ{m}")
# sqrt(N) inverted lists of 8-bit scalar-quantised vectors (1.3 GB of codes at 1M 1280-d shots,
# memory-mapped: only the lists a query reads are paged in). PQ codes are 20x smaller, but
# FAISS 1.15's PQ training took 755 s for 12k vectors on this loaded 2-core machine (SQ8: none).
DISK_FACTORY = "IVF{lists},SQ8"
DISK_PROBES = 16  # inverted lists read per query, of sqrt(N): recall@10 0.998 at 1M (bench_scale.py)
DISK_REFINE = 200  # candidates re-scored exactly from the float rows on disk (at least; 10 x k above 20)


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


class DiskSearch:
    """Search over one kind of a large library from disk: IVF candidates (DISK_FACTORY, SQ8
    codes by default), re-scored exactly against the float vectors on disk. Same interface as VectorSearch (search, vector, count,
    dim, is_approximate, approximate_index); built, appended to and checked like the IVF cache.
    """

    def __init__(self, root: Path, catalog: Catalog, kind: str, dim: int, encoder: str, *,
                 factory: str | None = None, probes: int | None = None, refine: int | None = None):
        """`factory`: a faiss index_factory string, {lists} and {m} filled in (default DISK_FACTORY)."""
        self.root, self.catalog, self.kind, self.encoder, self._dim = root, catalog, kind, encoder, dim
        self.factory = factory or DISK_FACTORY
        self.probes = probes or DISK_PROBES
        self.refine = refine or DISK_REFINE
        self.index_path = root / f"{kind}.disk.faiss"
        self.meta_path = root / f"{kind}.disk.json"
        self.rows_path = root / f"{kind}.rows.f32"
        self.ids_path = root / f"{kind}.rows.ids.npy"
        self.build_s = 0.0
        with locked(root):
            self._sync()

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self._dim

    def is_approximate(self, approximate: bool | None = None) -> bool:
        return True  # see the module docstring: exact search is not offered at this size

    def approximate_index(self):
        return self.index

    def vector(self, row_id: int) -> np.ndarray:
        at = int(np.searchsorted(self.ids, row_id))
        if at >= len(self.ids) or self.ids[at] != row_id:
            raise KeyError(row_id)
        return self._rows(np.array([at]))[0]

    def search(self, queries: np.ndarray, k: int, *, centred: bool = False,
               approximate: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest for each query row, exact scores, best first; -1 pads."""
        if centred:
            raise RereelError(f"{self.root}: centred search is not offered above {ON_DISK_ABOVE} {self.kind} "
                              f"(it would read every vector for each query)")
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.count))
        scores_out = np.full((len(q), k), -np.inf, np.float32)
        ids_out = np.full((len(q), k), -1, np.int64)
        if self.count == 0:
            return scores_out[:, :0], ids_out[:, :0]
        _, cands = self.index.search(q, min(self.count, max(self.refine, 10 * k)))
        for row, (query, cand) in enumerate(zip(q, cands)):
            cand = np.unique(cand[cand >= 0])  # sorted: the memory map is read in order
            scores = self._rows(np.searchsorted(self.ids, cand)) @ query
            order = np.argsort(-scores, kind="stable")[:k]
            scores_out[row, :len(order)], ids_out[row, :len(order)] = scores[order], cand[order]
        return scores_out, ids_out

    def _rows(self, at: np.ndarray) -> np.ndarray:
        """Float rows at positions `at` (sorted), read from the rows file."""
        out = np.empty((len(at), self._dim), np.float32)
        size = self._dim * 4
        for i, a in enumerate(at):
            os.preadv(self._rows_fd, [memoryview(out[i]).cast("B")], int(a) * size)
        return out

    def close(self) -> None:
        if getattr(self, "_rows_fd", None) is not None:
            os.close(self._rows_fd)
            self._rows_fd = None

    def __del__(self) -> None:
        self.close()

    # -- on disk --------------------------------------------------------------------------
    def _sync(self) -> None:
        """Load the files, append the catalog's new rows, or build them again; then map them."""
        import faiss

        meta = self._valid_meta()
        if meta is None:
            self._build()
        else:
            new = self.catalog.count(self.kind) - meta["count"]
            if new > 0:
                self._append(meta)
        self.ids = np.load(self.ids_path)
        # Rows are read with pread, not memory-mapped: a map pulls in the pages around each row
        # (fault-around), and after a few hundred queries held the whole 5 GB file (measured).
        self._rows_fd = os.open(self.rows_path, os.O_RDONLY)
        self.index = faiss.read_index(str(self.index_path), faiss.IO_FLAG_MMAP)  # codes paged in as read
        faiss.extract_index_ivf(self.index).nprobe = self.probes

    def _valid_meta(self) -> dict | None:
        """The files' description when it agrees with them and with the catalog; else None."""
        try:
            meta = json.loads(self.meta_path.read_text())
            ok = (meta.get("generation") == self.catalog.generation() and meta.get("encoder") == self.encoder
                  and meta.get("dim") == self._dim and meta.get("factory") == self._factory_string(meta["trained"])
                  and self.catalog.count(self.kind) <= RETRAIN_GROWTH * int(meta["trained"])
                  and self.index_path.exists()
                  and self.rows_path.stat().st_size == meta["count"] * self._dim * 4
                  and len(np.load(self.ids_path, mmap_mode="r")) == meta["count"]
                  # rows are only appended (a removal bumps the generation): count and highest id tell
                  and self.catalog.count(self.kind, up_to=meta["max_id"]) == meta["count"])
            return meta if ok else None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: built again, never trusted

    def _factory_string(self, n: int) -> str:
        return self.factory.format(lists=max(1, int(math.sqrt(n))), m=DISK_PQ_BYTES)

    def _build(self) -> None:
        import faiss

        t = time.perf_counter()
        tmp_rows = self.rows_path.with_suffix(f".{os.getpid()}.tmp")
        ids = []
        with open(tmp_rows, "wb") as f:  # the floats go to disk a chunk at a time, never all in memory
            for chunk_ids, vecs in self.catalog.iter_embeddings(self.kind):
                f.write(np.ascontiguousarray(vecs, np.float32).tobytes())
                ids.append(chunk_ids)
        ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        n = len(ids)
        rows = np.memmap(tmp_rows, np.float32, "r", shape=(n, self._dim)) if n else np.zeros((0, self._dim), np.float32)
        factory = self._factory_string(n)
        index = faiss.index_factory(self._dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10  # k-means iterations (25 by default): training is most of the build; recall measured with 10
        if hasattr(ivf, "pq"):
            ivf.pq.cp.niter = 10
        # k-means needs ~40 vectors a list, PQ's 256 centroids a sub-space ~10k vectors.
        sample = np.sort(np.random.default_rng(0).choice(n, min(n, max(40 * ivf.nlist, 16384)), replace=False))
        index.train(np.ascontiguousarray(rows[sample]))
        for at in range(0, n, _CHUNK):
            index.add_with_ids(np.ascontiguousarray(rows[at:at + _CHUNK]), ids[at:at + _CHUNK])
        del rows
        self._save(index, tmp_rows, ids, {"trained": n, "factory": factory})
        self.build_s = time.perf_counter() - t

    def _append(self, meta: dict) -> None:
        import faiss

        index = faiss.read_index(str(self.index_path))  # in memory, to add to: codes are small
        ids = [np.load(self.ids_path)]
        tmp_rows = self.rows_path.with_suffix(f".{os.getpid()}.tmp")
        os.replace(self.rows_path, tmp_rows)  # back under its name only with the description that counts it
        with open(tmp_rows, "ab") as f:
            for chunk_ids, vecs in self.catalog.iter_embeddings(self.kind, after_id=meta["max_id"]):
                vecs = np.ascontiguousarray(vecs, np.float32)
                f.write(vecs.tobytes())
                index.add_with_ids(vecs, chunk_ids)
                ids.append(chunk_ids)
        self._save(index, tmp_rows, np.concatenate(ids), {"trained": meta["trained"], "factory": meta["factory"]})

    def _save(self, index, tmp_rows: Path, ids: np.ndarray, meta: dict) -> None:
        # Description last: any crash before it leaves files that _valid_meta refuses (rebuilt).
        self.meta_path.unlink(missing_ok=True)
        tmp_ids = self.ids_path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp_ids, ids)
        os.replace(tmp_ids, self.ids_path)
        os.replace(tmp_rows, self.rows_path)
        save_index(index, self.index_path, self.meta_path, meta | {
            "generation": self.catalog.generation(), "encoder": self.encoder, "dim": self._dim,
            "count": len(ids), "max_id": int(ids.max()) if len(ids) else 0})


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
