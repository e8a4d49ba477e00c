"""The optional CLIP encoder, with a tiny randomly initialised CLIPModel built here (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_module

transformers = require_module("transformers", "the clip extra (Hugging Face transformers)")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A 2-layer CLIP (32-px images, 16-d shared space) and a character-level tokenizer, saved locally."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    chars = [chr(c) for c in range(97, 123)] + list("0123456789")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=40, bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
    import torch

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    path = root / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_images_and_words_share_one_space(tiny_clip):
    from rereel.encoders.clip import ClipEncoder

    enc = ClipEncoder(device="cpu", model=str(tiny_clip))
    assert enc.input_size == (32, 32) and enc.dim == 16 and enc.signature == "clip@1+model"
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    feats = enc.embed(frames)
    assert feats.embedding.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(feats.embedding, axis=1), 1, atol=1e-5)
    assert feats.grid.shape == (3, 9 * 32)
    words = enc.embed_text("water over rocks")
    assert words.shape == (16,) and abs(np.linalg.norm(words) - 1) < 1e-5
    np.testing.assert_allclose(words, enc.embed_text("water over rocks"), atol=1e-6)
    assert not np.allclose(words, enc.embed_text("robot"))
    # The same image twice gives the same vector; different images differ.
    again = enc.embed(frames[:1]).embedding[0]
    np.testing.assert_allclose(again, feats.embedding[0], atol=1e-4)


def test_index_and_search_by_words_end_to_end(tiny_clip, archive, tmp_path, monkeypatch):
    from rereel.encoders.clip import ClipEncoder
    from rereel.explore.query import QueryResolver
    from rereel.explore.similar import similar_shots
    from rereel.library import Library, index_paths

    monkeypatch.setenv("REREEL_CLIP_MODEL", str(tiny_clip))
    enc = ClipEncoder(device="cpu")
    with Library(tmp_path / "lib", create=True) as lib:
        report = index_paths([archive / "cc0_mdn_stream_of_water.mp4", archive / "cc0_mdn_flower_bloom.mp4"], lib, enc, "content")
        assert len(report.indexed) == 2 and lib.encoder == enc.signature
        q = QueryResolver(lib, "cpu").resolve("water flowing over rocks")
        assert q.kind == "words" and not q.classes
        hits = similar_shots(lib, q, top=5)
        ids, vectors = lib.catalog.embeddings("shots")
        expected = sorted(vectors @ q.vector, reverse=True)[: len(hits)]
        np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-4)
