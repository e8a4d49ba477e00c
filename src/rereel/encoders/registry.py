"""A registry of encoders, after timm's `create_model`: look a network up by name."""

from __future__ import annotations

from collections.abc import Callable

from rereel.encoders.base import Encoder
from rereel.errors import RereelError

_REGISTRY: dict[str, Callable[..., Encoder]] = {}
DEFAULT_ENCODER = "effnet-lite0"


def register(name: str):
    """Class decorator: make an Encoder available to `create_encoder(name)`."""

    def wrap(factory):
        _REGISTRY[name] = factory
        factory.name = name
        return factory

    return wrap


def list_encoders() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_encoder(name: str = DEFAULT_ENCODER, **kwargs) -> Encoder:
    """Build the encoder registered as `name` (e.g. "effnet-lite0")."""
    _load_builtin()
    if name not in _REGISTRY:
        raise RereelError(f"unknown encoder {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def _load_builtin() -> None:
    # Imported lazily so that `rereel --help` does not pay for torch.
    from rereel.encoders import clip, effnet  # noqa: F401  (clip imports transformers only when built)
