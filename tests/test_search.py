"""The library's one vector search: exact or approximate, plain or centred, shots or frames."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rereel.library import Library


@pytest.fixture()
def lib_dir(web_library, tmp_path):
    out = tmp_path / "library"
    shutil.copytree(web_library, out)  # the approximate index is written beside the flat one
    return out


def test_exact_plain_is_the_flat_index(lib_dir):
    with Library(lib_dir) as lib:
        ids, vectors = lib.catalog.embeddings("shots")
        scores, found = lib.search(vectors[:5], 3)
        flat_scores, flat_found = lib.vectors("shots").search(vectors[:5], 3)
        assert np.array_equal(found, flat_found) and np.array_equal(scores, flat_scores)
        assert list(found[:, 0]) == list(ids[:5])
        frames_ids, frame_vectors = lib.catalog.embeddings("frames")
        _, found = lib.search(frame_vectors[:3], 1, kind="frames")
        assert list(found[:, 0]) == list(frames_ids[:3])


def test_centred_ranks_as_the_brute_force_around_the_mean(lib_dir):
    with Library(lib_dir) as lib:
        ids, vectors = lib.catalog.embeddings("shots")
        query = vectors[3] * 0.5 + vectors[7] * 0.5
        mean = vectors.mean(0)
        centred = vectors - mean
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
        q = query - mean
        expected = centred @ (q / max(np.linalg.norm(q), 1e-8))
        order = np.argsort(-expected, kind="stable")
        scores, found = lib.search(query, len(ids), centred=True)
        assert np.array_equal(found[0], ids[order]) and np.array_equal(scores[0], expected[order])
        with pytest.raises(ValueError):
            lib.search(query, 3, centred=True, approximate=True)


def test_the_approximate_index_is_built_once_and_kept_beside_the_flat_one(lib_dir):
    with Library(lib_dir) as lib:
        ids, vectors = lib.catalog.embeddings("shots")
        scores, found = lib.search(vectors, 1, approximate=True)
        assert list(found[:, 0]) == list(ids) and np.allclose(scores[:, 0], 1.0, atol=1e-4)
        assert lib.searcher().is_approximate(None) is False  # a small library: auto stays exact
    cached = lib_dir / "shots.ivf.faiss"
    assert cached.exists() and (lib_dir / "shots.ivf.faiss.json").exists()
    written = cached.stat().st_mtime_ns
    with Library(lib_dir) as lib:
        _, found = lib.search(vectors, 1, approximate=True)
        assert list(found[:, 0]) == list(ids)
    assert cached.stat().st_mtime_ns == written  # loaded, not built again
    with Library(lib_dir) as lib:  # a removal bumps the generation: the cache no longer agrees
        lib.catalog.set_meta("generation", str(lib.catalog.generation() + 1))
    with Library(lib_dir) as lib:
        _, found = lib.search(vectors, 1, approximate=True)
        assert list(found[:, 0]) == list(ids)
    assert cached.stat().st_mtime_ns != written


def test_a_large_kind_is_searched_from_disk_without_the_flat_index(lib_dir, monkeypatch):
    """Above ON_DISK_ABOVE: IVF-PQ candidates re-scored from memory-mapped floats, no flat index
    loaded. Checked against numpy's exact scores over the catalog's own vectors."""
    import rereel.library.folder as folder
    from rereel.library import search

    monkeypatch.setattr(folder, "ON_DISK_ABOVE", 10)
    monkeypatch.setattr(search, "DISK_PROBES", 1 << 20)  # every list: the candidates are all the frames
    with Library(lib_dir) as lib:
        ids, vectors = lib.catalog.embeddings("frames")
        assert len(ids) > 10
        queries = vectors[::7] * 0.6 + vectors[3::7][: len(vectors[::7])].mean(0) * 0.4
        scores, found = lib.search(queries, 5, kind="frames")  # approximate=False: from disk all the same
        assert isinstance(lib.searcher("frames"), search.DiskSearch) and "frames" not in lib._vectors
        exact = queries @ vectors.T
        for row in range(len(queries)):
            order = np.argsort(-exact[row], kind="stable")[:5]
            assert list(found[row]) == list(ids[order])
            assert np.allclose(scores[row], exact[row][order], atol=1e-5)
        assert np.array_equal(lib.searcher("frames").vector(int(ids[4])), vectors[4])
        with pytest.raises(Exception, match="centred search is not offered"):
            lib.search(queries, 5, kind="frames", centred=True)
    written = (lib_dir / "frames.disk.faiss").stat().st_mtime_ns
    with Library(lib_dir) as lib:
        lib.search(queries, 5, kind="frames")
    assert (lib_dir / "frames.disk.faiss").stat().st_mtime_ns == written  # kept, not built again
    with Library(lib_dir) as lib:  # a removal bumps the generation: built again
        lib.catalog.set_meta("generation", str(lib.catalog.generation() + 1))
        _, again = lib.search(queries, 5, kind="frames")
        assert np.array_equal(again, found)
    assert (lib_dir / "frames.disk.faiss").stat().st_mtime_ns != written
