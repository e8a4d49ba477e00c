"""The default encoder loads real ImageNet weights and gives well-formed features."""

import numpy as np
import pytest
from PIL import Image

from conftest import require_module

from rereel.encoders import COLOUR_DIM, create_encoder, list_encoders

skimage_data = require_module("skimage.data", "the dev extra: its standard test images")


def center_crop_224(img: np.ndarray) -> np.ndarray:
    """The standard ImageNet evaluation crop: shorter side to 256, centre 224."""
    im = Image.fromarray(img).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BICUBIC)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return np.asarray(im.crop((left, top, left + 224, top + 224)))


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("effnet-lite0")


def test_registry_lists_default():
    assert "effnet-lite0" in list_encoders()


def test_classifies_real_photos(encoder):
    # ImageNet-1k: 281-285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian);
    # 967 is espresso. Random or wrongly loaded weights cannot pass both.
    photos = np.stack([center_crop_224(skimage_data.chelsea()), center_crop_224(skimage_data.coffee())])
    probs = encoder.classify(photos)
    assert 281 <= int(probs[0].argmax()) <= 285, probs[0].argsort()[-5:]
    assert int(probs[1].argmax()) == 967
    assert probs[1, 967] > 0.5


def test_onnx_matches_torch(encoder):
    torch_enc = create_encoder("effnet-lite0", backend="torch", device="cpu")
    frames = np.stack([center_crop_224(skimage_data.astronaut()), center_crop_224(skimage_data.rocket())])
    a, b = encoder.embed(frames), torch_enc.embed(frames)
    assert np.abs(a.embedding - b.embedding).max() < 1e-3
    assert np.abs(a.grid.astype(np.float32) - b.grid.astype(np.float32)).max() < 2e-2


def test_feature_shapes_and_norms(encoder):
    frames = np.stack([center_crop_224(skimage_data.chelsea())] * 3)
    f = encoder.embed(frames)
    assert f.embedding.shape == (3, 1280) and f.embedding.dtype == np.float32
    assert f.grid.shape == (3, 9 * 320) and f.grid.dtype == np.float16
    assert f.colour.shape == (3, COLOUR_DIM)
    for x in (f.embedding, f.grid.astype(np.float32), f.colour):
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-2)


def test_similar_images_are_closer(encoder):
    cat = center_crop_224(skimage_data.chelsea())
    cat_flipped = cat[:, ::-1].copy()
    coffee = center_crop_224(skimage_data.coffee())
    e = encoder.embed(np.stack([cat, cat_flipped, coffee])).embedding
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
