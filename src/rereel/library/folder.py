"""A library folder: the catalog, the vector indexes, and which encoder made them."""

from __future__ import annotations

import os
from pathlib import Path

from rereel.errors import RereelError
from rereel.library.catalog import Catalog
from rereel.library.search import ON_DISK_ABOVE, DiskSearch, VectorSearch
from rereel.library.vectors import VectorIndex, load_vectors

DEFAULT_LIBRARY = "rereel-library"


def library_path(path: Path | str | None) -> Path:
    """--library, else $REREEL_LIBRARY, else ./rereel-library."""
    return Path(path or os.environ.get("REREEL_LIBRARY") or DEFAULT_LIBRARY)


class Library:
    """Open (and with `create=True`, make) the library at `root`.

    `shared=True` lets several threads use it in turn (the web app, which holds a lock).
    """

    def __init__(self, root: Path | str | None = None, *, create: bool = False, shared: bool = False):
        self.root = library_path(root)
        db = self.root / "catalog.sqlite"
        if not db.exists():
            if not create:
                raise RereelError(f"{self.root}: no library here (make one with `rereel index VIDEOS --library {self.root}`)")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RereelError(f"{self.root}: cannot create the library folder ({e.strerror})") from None
        self.catalog = Catalog(db, shared=shared)
        self._vectors: dict[str, VectorIndex] = {}
        self._searchers: dict[str, VectorSearch | DiskSearch] = {}

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- encoder bookkeeping --------------------------------------------------------------
    @property
    def encoder(self) -> str | None:
        """The encoder signature (name@version) the library's vectors come from, if any."""
        return self.catalog.get_meta("encoder")

    @property
    def encoder_name(self) -> str | None:
        enc = self.encoder
        return enc.split("@")[0] if enc else None

    @property
    def dim(self) -> int:
        return int(self.catalog.get_meta("dim") or 0)

    def claim_encoder(self, signature: str, dim: int) -> None:
        """Record the encoder of a new library; refuse one whose vectors came from another."""
        current = self.encoder
        if current is None:
            self.catalog.set_meta("encoder", signature)
            self.catalog.set_meta("dim", str(dim))
            return
        self.require_encoder(signature)

    def require_encoder_name(self, name: str) -> None:
        """Refuse, before any network is loaded, a run with another encoder than the library's."""
        if self.encoder_name and self.encoder_name != name:
            from rereel.encoders import list_encoders

            if name not in list_encoders():  # not a re-embed to suggest
                raise RereelError(f"unknown encoder {name!r}; known: {', '.join(list_encoders())}")
            raise RereelError(
                f"{self.root}: library built with encoder {self.encoder}, not {name}; use --encoder "
                f"{self.encoder_name}, or re-embed it: `rereel reembed --library {self.root} --encoder {name}`"
            )

    def require_encoder(self, signature: str) -> None:
        self.require_encoder_name(signature.split("@")[0])
        current = self.encoder
        if current != signature:  # same network, other version: its vectors are not comparable
            raise RereelError(
                f"{self.root}: library built with encoder {current}, not {signature}; "
                f"re-embed it with `rereel reembed --library {self.root} --encoder {signature.split('@')[0]}`"
            )
        stale = self.catalog.db.execute("SELECT COUNT(*) FROM videos WHERE encoder!=?", (current,)).fetchone()[0]
        if stale:
            raise RereelError(
                f"{self.root}: re-embedding was interrupted ({stale} videos still on the old encoder); "
                f"finish it with `rereel reembed --library {self.root} --encoder {current.split('@')[0]}`"
            )

    def require_content(self) -> None:
        if self.catalog.stats()["shots"] == 0:
            raise RereelError(f"{self.root}: the library is empty; index footage with `rereel index PATH --library {self.root}`")

    # -- vectors ----------------------------------------------------------------------------
    def vectors(self, kind: str = "shots") -> VectorIndex:
        """FAISS index of shot (or frame) vectors, synced with the catalog."""
        if kind not in self._vectors:
            self._vectors[kind] = load_vectors(self.root, self.catalog, kind, self.dim, self.encoder or "")
        return self._vectors[kind]

    def searcher(self, kind: str = "shots") -> VectorSearch | DiskSearch:
        """Search over shot (or frame) vectors; its approximate index is cached beside the flat one.

        Above ON_DISK_ABOVE vectors, a DiskSearch: a memory-mapped IVF index and float rows
        read from disk per query, no flat index (see library/search.py).
        """
        if kind not in self._searchers:
            if kind not in self._vectors and self.catalog.count(kind) > ON_DISK_ABOVE:
                self._searchers[kind] = DiskSearch(self.root, self.catalog, kind, self.dim, self.encoder or "")
            else:
                self._searchers[kind] = VectorSearch(self.vectors(kind), root=self.root, catalog=self.catalog,
                                                     kind=kind, encoder=self.encoder or "")
        return self._searchers[kind]

    def search(self, queries, k: int, kind: str = "shots", *, centred: bool = False,
               approximate: bool | None = False):
        """(scores, ids) of the k shots (or frames) nearest each query row, best first; -1 pads.

        `centred`: cosine around the archive's mean (exact). `approximate`: False exact, True
        through the inverted-file index, None approximate above APPROXIMATE_ABOVE vectors.
        Above ON_DISK_ABOVE vectors every plain search is approximate, candidates scored exactly
        (recall@10 measured by bench/bench_scale.py), and centred search is refused.
        See library/search.py.
        """
        return self.searcher(kind).search(queries, k, centred=centred, approximate=approximate)

    def info(self) -> dict:
        stats = self.catalog.stats()
        return {**stats, "encoder": self.encoder, "library": str(self.root)}
