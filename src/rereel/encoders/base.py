"""What an image encoder gives the library: per-frame global, composition and colour features."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from rereel.errors import RereelError


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """`x` scaled to unit length along `axis` (a zero vector stays zero); the dtype is kept."""
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-8)


@dataclass
class Features:
    """Features of N frames. All rows are L2-normalised so that a dot product is a cosine."""

    embedding: np.ndarray  # [N, dim] float32: what the network sees (semantics)
    grid: np.ndarray  # [N, cells * channels] float16: where it sees it (composition)
    colour: np.ndarray  # [N, COLOUR_DIM] float32: tone and colour signature


class Encoder(ABC):
    """An image network. Subclasses register themselves with `@register("name")`."""

    name: str = ""
    version: str = "1"  # bump when features change, so libraries built before are re-embedded
    dim: int = 0
    grid_cells: tuple[int, int] = (3, 3)
    input_size: tuple[int, int] = (224, 224)  # (width, height) of the RGB frames `embed` wants
    batch_size: int = 32  # frames the indexer hands `embed` at once

    @property
    def signature(self) -> str:
        """Identifies the features a library holds: same signature, comparable vectors."""
        return f"{self.name}@{self.version}"

    def load(self) -> None:
        """Load the network now, where it would otherwise load at first use (the indexing
        workers do this before they say they are ready). Most encoders load in their constructor."""

    @abstractmethod
    def embed(self, frames: np.ndarray) -> Features:
        """Embed a batch of RGB uint8 frames shaped [N, H, W, 3] at `input_size`."""

    def embed_text(self, text: str) -> np.ndarray:
        """A query vector for words, in the same space as `embedding`; not every encoder has one."""
        raise RereelError(f"encoder {self.name!r} cannot embed words")
