"""The shared training toolkit: checkpoints, randomness, sample sheets, frame feeding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rereel.errors import MediaError, RereelError
from rereel.learn.frames import FilmFrames, check_videos, frame_at, sample_corpus
from rereel.learn.toolkit import (
    choose_precision,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    to_tensor,
    to_uint8,
    write_sample_sheet,
)

WATER = "cc0_mdn_stream_of_water.mp4"


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "m", {"model": model.state_dict(), "step": 7, "rng": rng_state()}, {"kind": "toy", "n": 1})
    assert not list((tmp_path / "m").glob("*.partial"))  # atomic: no temp file left behind
    ckpt = load_checkpoint(tmp_path / "m", "toy")
    assert ckpt["step"] == 7 and torch.equal(ckpt["model"]["weight"], model.weight.detach())
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"kind": "toy", "n": 1, "step": 7}
    with pytest.raises(RereelError, match="holds an unknown kind of model, not an autoencoder model"):
        load_checkpoint(tmp_path / "m", "autoencoder")
    save_checkpoint(tmp_path / "s", {"step": 1}, {"kind": "see"})
    with pytest.raises(RereelError, match="holds a learning-to-see model, not an autoencoder model"):
        load_checkpoint(tmp_path / "s", "autoencoder")
    with pytest.raises(RereelError, match="no such model folder"):
        load_checkpoint(tmp_path / "missing", "toy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RereelError, match="not a trained model"):
        load_checkpoint(tmp_path / "empty", "toy")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RereelError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "bad", "toy")


def test_rng_state_replays_the_same_numbers(tmp_path):
    rng = np.random.default_rng(3)
    rng.random(5)
    state = rng_state(rng)
    save_checkpoint(tmp_path, {"rng": state}, {"kind": "toy"})
    first = (torch.rand(4), rng.random(4))
    other = np.random.default_rng(99)
    set_rng_state(load_checkpoint(tmp_path, "toy")["rng"], other)  # through torch.load(weights_only=True)
    again = (torch.rand(4), other.random(4))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])


def test_cpu_precision_is_float32():
    prec = choose_precision("cpu")
    assert prec.device.type == "cpu" and prec.dtype is None and not prec.grad_scaler().is_enabled()


def test_image_conversions_and_sheet(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    t = to_tensor(frames, torch.device("cpu"))
    assert t.shape == (3, 3, 8, 10) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(to_uint8(t), frames)
    from PIL import Image

    path = write_sample_sheet(tmp_path / "s.png", [frames, frames[::-1]], gap=2)
    assert Image.open(path).size == (3 * 10 + 2 * 2, 2 * 8 + 2)


def test_film_frames_held_and_streamed_cover_the_film(archive):
    video = archive / WATER
    held = FilmFrames([video], 32, 20, every=1)
    assert held.held and held.count > 80  # 3.2 s at 30 fps
    a = np.concatenate(list(held.epoch(0, seed=1, batch=8)))
    b = np.concatenate(list(held.epoch(0, seed=1, batch=8)))
    c = np.concatenate(list(held.epoch(1, seed=1, batch=8)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # order: a function of (seed, epoch)
    assert len(a) == held.count // 8 * 8
    # A budget too small to hold the clip streams it through a shuffle buffer instead.
    streamed = FilmFrames([video], 32, 20, every=1, budget_mb=0)
    assert not streamed.held and streamed.capacity == 64
    s = np.concatenate(list(streamed.epoch(0, seed=1, batch=8)))
    assert abs(len(s) - len(a)) <= 8
    # Same frames, shuffled: every streamed frame is one of the film's.
    film = {f.tobytes() for f in held.frames}
    assert sum(f.tobytes() in film for f in s) >= 0.9 * len(s)


def test_frame_at_and_corpus(archive, tmp_path):
    f = frame_at(f"{archive / WATER}@1.5", 64, 36)
    assert f.shape == (36, 64, 3)
    from PIL import Image

    Image.fromarray(f).save(tmp_path / "f.png")
    assert frame_at(str(tmp_path / "f.png"), 32, 32).shape == (32, 32, 3)
    frames = sample_corpus([archive / WATER, tmp_path / "f.png"], 40, max_frames=12)
    assert 10 <= len(frames) <= 14 and all(min(x.shape[:2]) == 40 for x in frames)
    with pytest.raises(RereelError, match="not an image"):
        frame_at(str(archive.parent / "README.md"), 32, 32)


def test_bad_inputs_name_the_file(media, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    with pytest.raises(MediaError, match="notes.mp4"):
        check_videos([text])
    with pytest.raises(MediaError, match="no video stream"):
        check_videos([media / "odd" / "audio_only_apollo15_opus.mp4"])
    with pytest.raises(RereelError, match="no video files"):
        check_videos([tmp_path / "nothing"]) if (tmp_path / "nothing").mkdir() is None else None
