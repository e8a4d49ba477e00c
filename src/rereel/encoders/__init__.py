"""Image networks behind one interface, looked up by name (`create_encoder("effnet-lite0")`)."""

from rereel.encoders.base import Encoder, Features, l2_normalise
from rereel.encoders.colour import COLOUR_DIM, colour_signature
from rereel.encoders.registry import DEFAULT_ENCODER, create_encoder, list_encoders, register

__all__ = [
    "COLOUR_DIM",
    "DEFAULT_ENCODER",
    "Encoder",
    "Features",
    "colour_signature",
    "create_encoder",
    "l2_normalise",
    "list_encoders",
    "register",
]
