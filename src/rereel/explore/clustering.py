"""Group shot vectors with spherical k-means (FAISS), choosing the number of groups by silhouette.

Why silhouette: it asks of each shot "am I nearer my own group than the next one?", which
is what a person checks when judging a grid, and it needs no assumption about group shapes
beyond what k-means already makes. It is computed with numpy on a sample (at most
SILHOUETTE_SAMPLE shots), so choosing k stays cheap on a large archive.

Vectors are centred on the archive's mean first (see group_shots); the centroids returned
live in that centred space, so `nearest_members` is given the same centred vectors.

Why a floor on k: silhouette alone rewards splitting an archive in two (animation vs live
action, say), which is true but useless to browse. Groups are shown nine at a time, so k
is searched from about n / (3 grids) upwards, where a group still fits on a few grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rereel.encoders import l2_normalise
from rereel.errors import RereelError

SILHOUETTE_SAMPLE = 2000
SHOTS_PER_GROUP_FLOOR = 5
MAX_GROUPS = 60
SHOTS_PER_GROUP_CEILING = 27  # three 3x3 grids: more than that and a group is too broad to take in


@dataclass
class Grouping:
    labels: np.ndarray  # [n] group of each shot, 0..k-1, ordered by group size (largest first)
    centroids: np.ndarray  # [k, dim] unit vectors, in the centred space of `centred`
    centred: np.ndarray  # [n, dim] the vectors as grouped: centred on their mean, unit length
    silhouette: float  # mean silhouette of the chosen k (on the sample)
    tried: dict[int, float]  # k -> silhouette, for the user to see why this k


def kmeans(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(labels, unit centroids) of spherical k-means: cosine is the library's similarity."""
    import faiss

    x = np.ascontiguousarray(l2_normalise(vectors), dtype=np.float32)
    km = faiss.Kmeans(x.shape[1], k, niter=40, nredo=5, spherical=True, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=100_000)
    km.train(x)
    _, labels = km.index.search(x, 1)
    return labels[:, 0].astype(np.int64), l2_normalise(km.centroids)


def silhouette(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance; 0 for a shot alone in its group (the usual convention)."""
    x = l2_normalise(vectors.astype(np.float64))
    dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    groups = np.unique(labels)
    if len(groups) < 2:
        return 0.0
    # Mean distance from each point to every group: one matrix product with the membership matrix.
    member = (labels[:, None] == groups[None, :]).astype(np.float64)
    sizes = member.sum(0)
    mean_to = dist @ member
    own = np.searchsorted(groups, labels)
    own_size = sizes[own]
    a = mean_to[np.arange(len(x)), own] / np.maximum(own_size - 1, 1)  # self-distance is 0
    mean_to[np.arange(len(x)), own] = np.inf
    b = (mean_to / sizes[None, :]).min(1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def candidate_counts(n: int) -> range:
    low = max(2, int(np.ceil(n / SHOTS_PER_GROUP_CEILING)))
    # At least SHOTS_PER_GROUP_FLOOR shots a group on average: the silhouette keeps rising with k
    # on a small archive, and took 38 groups for the demo's 92 shots, nine of them single shots
    # (3x3 grids of one or two pictures).
    high = min(MAX_GROUPS, n // SHOTS_PER_GROUP_FLOOR)
    return range(low, max(low, high) + 1)


def group_shots(vectors: np.ndarray, count: int | None = None, seed: int = 0, on_try=None) -> Grouping:
    """Group the rows of `vectors`; `count` fixes the number of groups, else it is chosen."""
    n = len(vectors)
    if n < 2:
        raise RereelError(f"the library has {n} shot{'s' if n != 1 else ''}: at least two are needed to group")
    if count is not None:
        if not 1 <= count <= n:
            raise RereelError(f"--count must be between 1 and the number of shots ({n})")
        ks = [count]
    else:
        ks = list(candidate_counts(n))
    # Centred on the archive's mean: ReLU features all share a large positive component, and
    # without removing it every cosine is high and k-means splits on brightness and texture.
    vectors = l2_normalise(l2_normalise(vectors) - l2_normalise(vectors).mean(0))
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)
    tried: dict[int, float] = {}
    best = None
    for k in ks:
        labels, centroids = kmeans(vectors, k, seed)
        score = silhouette(vectors[sample], labels[sample]) if k > 1 else 0.0
        tried[k] = score
        if best is None or score > best[0]:
            best = (score, labels, centroids)
        if on_try is not None:
            on_try(k, score)
    score, labels, centroids = best
    # Renumber by size, largest group first, dropping centroids that won no shot.
    used, counts = np.unique(labels, return_counts=True)
    order = used[np.argsort(-counts, kind="stable")]
    renumber = {int(old): new for new, old in enumerate(order)}
    return Grouping(np.array([renumber[int(label)] for label in labels]), centroids[order], vectors, score, tried)


def nearest_members(vectors: np.ndarray, members: np.ndarray, centroid: np.ndarray, video_of: np.ndarray,
                    count: int = 9, per_video: int = 3) -> list[int]:
    """Up to `count` members nearest the centroid, at most `per_video` from one video while others remain.

    Consecutive shots of one film are near-duplicates; without the cap one long sequence can fill
    a grid and hide that the group spans several sources.
    """
    order = members[np.argsort(-(l2_normalise(vectors[members]) @ centroid))]
    chosen: list[int] = []
    taken: dict[int, int] = {}
    for i in order:
        if taken.get(int(video_of[i]), 0) < per_video:
            chosen.append(int(i))
            taken[int(video_of[i])] = taken.get(int(video_of[i]), 0) + 1
        if len(chosen) == count:
            return chosen
    for i in order:  # not enough variety: fill with the nearest of the rest
        if int(i) not in chosen:
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return chosen


@dataclass
class ShotGroup:
    number: int  # 1-based, largest group first
    shown: list  # [Footage] its 3x3 grid: nearest the centre, at most three per video
    ordered: list  # [Footage] every member, nearest the centre first
    cohesion: float  # mean cosine of the members with the centre


def library_groups(catalog, count: int | None = None, seed: int = 0, on_try=None) -> tuple[Grouping, list[ShotGroup]]:
    """Group a library's shots and pick each group's grid: what `rereel clusters` and the web app show."""
    from rereel.explore.footage import shot_footage

    ids, vectors = catalog.embeddings("shots")
    footage = [shot_footage(catalog, int(i)) for i in ids]
    # Videos moved or deleted since indexing: nothing could show them (their grid video failed
    # half way), so they are grouped without, as `similar` and remakes leave them out.
    missing = catalog.missing_paths()
    if missing:
        keep = [k for k, f in enumerate(footage) if str(f.path) not in missing]
        if not keep:
            raise RereelError(f"none of the library's videos is where it was indexed ({len(missing)} missing); "
                              "if they moved, `rereel relink OLD NEW`")
        ids, vectors, footage = ids[keep], vectors[keep], [footage[k] for k in keep]
    video_of = np.array([f.video_id for f in footage])
    grouping = group_shots(vectors, count, seed, on_try)
    groups = []
    for g in range(int(grouping.labels.max()) + 1):
        members = np.nonzero(grouping.labels == g)[0]
        shown = nearest_members(grouping.centred, members, grouping.centroids[g], video_of)
        cos = grouping.centred[members] @ grouping.centroids[g]
        groups.append(ShotGroup(g + 1, [footage[i] for i in shown], [footage[i] for i in members[np.argsort(-cos)]],
                                float(cos.mean())))
    return grouping, groups
