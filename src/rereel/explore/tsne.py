"""A small exact t-SNE in numpy (van der Maaten & Hinton 2008), after PCA to 50 dimensions.

Why not UMAP or scikit-learn: umap-learn brings numba, llvmlite, pynndescent and
scikit-learn (hundreds of MB, slow first import) for a picture of a few hundred to a few
thousand shots. Exact t-SNE is O(n^2) per iteration, which at 2000 shots is a 4M-entry
matrix: seconds on two cores. Larger archives are sampled down before mapping.

The cost function, the perplexity calibration by bisection, early exaggeration and the
gains/momentum update are the reference algorithm's; cosine geometry is kept by L2-normalising
the vectors first (Euclidean distance between unit vectors is monotone in cosine).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rereel.encoders import l2_normalise

MAX_POINTS = 2500  # shots mapped at most: a larger archive is sampled down (`map_sample`)
ITERATIONS = 750


def pca(x: np.ndarray, dims: int = 50) -> np.ndarray:
    x = x - x.mean(0)
    dims = min(dims, x.shape[0], x.shape[1])
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u[:, :dims] * s[:dims]


def _affinities(x: np.ndarray, perplexity: float, tol: float = 1e-5, steps: int = 60) -> np.ndarray:
    """Symmetric joint probabilities P whose rows each have the asked perplexity."""
    n = len(x)
    sq = (x * x).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    target = np.log(perplexity)
    p = np.zeros((n, n))
    beta = np.ones(n)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    mask = ~np.eye(n, dtype=bool)
    # Bisection on the precision of every row at once: vectorised, 60 steps reach 1e-5.
    for _ in range(steps):
        e = np.exp(-(d - np.where(mask, d, np.inf).min(1, keepdims=True)) * beta[:, None]) * mask
        sums = e.sum(1, keepdims=True)
        p = e / sums
        entropy = -(p * np.log(np.maximum(p, 1e-300))).sum(1)
        diff = entropy - target
        if np.abs(diff).max() < tol:
            break
        up = diff > 0  # too flat: raise the precision
        lo = np.where(up, beta, lo)
        hi = np.where(up, hi, beta)
        beta = np.where(up, np.where(np.isinf(hi), beta * 2, (beta + hi) / 2), np.where(np.isinf(lo), beta / 2, (beta + lo) / 2))
    p = (p + p.T) / (2 * n)
    return np.maximum(p, 1e-12)


def map_sample(ids: np.ndarray, vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ids, vectors, sampled): all of them, or an even random sample of MAX_POINTS in catalog order
    (exact t-SNE is quadratic); the same seed gives the same sample."""
    if len(ids) <= MAX_POINTS:
        return ids, vectors, False
    keep = np.sort(np.random.default_rng(seed).choice(len(ids), MAX_POINTS, replace=False))
    return ids[keep], vectors[keep], True


def tsne(vectors: np.ndarray, *, perplexity: float = 30.0, iterations: int = ITERATIONS, seed: int = 0,
         on_iteration: Callable[[int, int], None] | None = None) -> np.ndarray:
    """[n, dim] -> [n, 2] positions."""
    n = len(vectors)
    if n < 4:  # too few for neighbourhoods: the first two principal components say it all
        out = np.zeros((n, 2))
        y = pca(vectors, 2)
        out[:, : y.shape[1]] = y
        return out
    x = l2_normalise(vectors)
    x = pca(x.astype(np.float64), 50)
    perplexity = min(perplexity, (n - 1) / 3)
    p = _affinities(x, perplexity)
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1e-4, (n, 2))
    velocity = np.zeros_like(y)
    gains = np.ones_like(y)
    eta = max(n / 12, 50.0)  # the "auto" learning rate of Belkina et al. 2019
    for it in range(iterations):
        exaggeration = 12.0 if it < 250 else 1.0
        momentum = 0.5 if it < 250 else 0.8
        sq = (y * y).sum(1)
        num = 1.0 / (1.0 + np.maximum(sq[:, None] + sq[None, :] - 2 * y @ y.T, 0.0))
        np.fill_diagonal(num, 0.0)
        q = np.maximum(num / num.sum(), 1e-12)
        w = (exaggeration * p - q) * num
        grad = 4.0 * (w.sum(1)[:, None] * y - w @ y)
        same = np.sign(grad) == np.sign(velocity)
        gains = np.maximum(np.where(same, gains * 0.8, gains + 0.2), 0.01)
        velocity = momentum * velocity - eta * gains * grad
        y = y + velocity
        y -= y.mean(0)
        if on_iteration is not None and it % 25 == 0:
            on_iteration(it, iterations)
    return y
