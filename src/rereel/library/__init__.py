"""The archive library: a SQLite catalog of videos, shots and frame features, plus FAISS indexes."""

from rereel.library.catalog import Catalog, FrameRecord, ShotRecord
from rereel.library.indexer import IndexReport, ProgressSink, analyse_video, index_paths
from rereel.library.folder import DEFAULT_LIBRARY, Library, library_path
from rereel.library.search import VectorSearch
from rereel.library.vectors import VectorIndex

__all__ = [
    "Catalog",
    "DEFAULT_LIBRARY",
    "FrameRecord",
    "IndexReport",
    "Library",
    "ProgressSink",
    "ShotRecord",
    "VectorIndex",
    "VectorSearch",
    "analyse_video",
    "index_paths",
    "library_path",
]
