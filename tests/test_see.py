"""Learning to see (pix2pix): it learns the corpus, renders any video with fps and audio kept, resumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TORCH_THREADS
from typer.testing import CliRunner

from rereel.errors import RereelError
from rereel.learn import see
from rereel.learn.frames import sample_corpus
from rereel.learn.pix2pix import PatchDiscriminator, UNetGenerator, init_weights
from rereel.learn.toolkit import to_tensor, to_uint8
from rereel.media import decode_frames, probe

FLOWER = "cc0_mdn_flower_bloom.mp4"  # the corpus: 5 s of a flower opening
WATER = "cc0_mdn_stream_of_water.mp4"  # a different video, with audio
SIZE = 64


def tiny(**kw) -> see.SeeConfig:
    return see.SeeConfig(**{**dict(size=SIZE, steps=150, batch=4, base=16, sample_every=50, checkpoint_every=0, live_steps=100), **kw})


@pytest.fixture(scope="module")
def corpus(archive):
    frames = sample_corpus([archive / FLOWER], round(SIZE * 1.3), max_frames=60)
    return frames[0::2], frames[1::2]  # train on alternate frames, hold the others out


@pytest.fixture(scope="module")
def trained(archive, corpus, tmp_path_factory):
    torch.set_num_threads(TORCH_THREADS)
    model_dir = tmp_path_factory.mktemp("see") / "model"
    result = see.train([archive / FLOWER], model_dir, tiny(), device="cpu", progress=False, frames=corpus[0])
    return model_dir, result


def test_training_beats_the_untrained_generator_on_held_out_pairs(corpus, trained):
    model_dir, result = trained
    pairs = [see.centre_pair(f, SIZE, "degrade") for f in corpus[1]]
    a = to_tensor([p[0] for p in pairs], torch.device("cpu"))
    b = to_tensor([p[1] for p in pairs], torch.device("cpu"))
    torch.manual_seed(0)
    g0 = UNetGenerator(SIZE, 16)
    init_weights(g0)
    seer = see.Seer(model_dir, smooth=0, device="cpu")
    with torch.no_grad():
        untrained, trained_l1 = (g0.eval()(a) - b).abs().mean().item(), (seer.gen(a) - b).abs().mean().item()
    assert result["step"] == 150
    assert trained_l1 < 0.6 * untrained, (trained_l1, untrained)
    assert len(list((model_dir / "samples").glob("step-*.png"))) == 3  # input / output / target


def test_render_keeps_frames_fps_and_audio(archive, trained, tmp_path):
    model_dir, _ = trained
    src = archive / WATER
    out = see.render(src, model_dir, tmp_path / "r.mp4", side_by_side=True, smooth=0.5, device="cpu", progress=False)
    a, b = probe(src), probe(out)
    assert b.has_audio and abs(a.fps - b.fps) < 0.01 and abs(a.duration - b.duration) < 0.2
    assert b.display_size == (2 * a.width, a.height)
    assert sum(1 for _ in decode_frames(out)) == sum(1 for _ in decode_frames(src))


def test_seer_is_deterministic_and_smooths(archive, trained):
    model_dir, _ = trained
    frames = [d.rgb(160, 90) for d in decode_frames(archive / WATER, end=0.3)]
    seer = see.Seer(model_dir, smooth=0, device="cpu")
    once, twice = seer.see(frames[0]), seer.see(frames[0])
    assert once.shape == (SIZE, round(SIZE * 16 / 9), 3) and np.array_equal(once, twice)
    raw = seer.see(frames[5])
    smooth = see.Seer(model_dir, smooth=0.5, device="cpu")
    smooth.see(frames[0])
    blended = smooth.see(frames[5]).astype(int)
    expect = (once.astype(int) + raw.astype(int)) / 2
    assert np.abs(blended - expect).max() <= 1


def test_recipes(archive):
    frame = next(iter(decode_frames(archive / FLOWER))).rgb(128, 72)
    d = see.degrade(frame)
    assert d.shape == frame.shape and np.array_equal(d[..., 0], d[..., 1])  # grayscale
    assert np.array_equal(d, see.degrade(frame))  # no random parts without an rng
    rng = np.random.default_rng(0)
    assert not np.array_equal(see.degrade(frame, rng), d)  # brightness and contrast vary in training
    e = see.edges(frame)
    assert set(np.unique(e)) <= {0, 255} and 0 < (e > 0).mean() < 0.5
    a, t = see.random_pair(frame, 64, "edges", rng)
    assert a.shape == t.shape == (64, 64, 3)


def test_patchgan_sees_70_pixel_patches():
    # Receptive field of one output of the discriminator: 70x70 (Isola et al.).
    d = PatchDiscriminator(8).eval()
    for i, m in enumerate(d.net):  # instance norm mixes all positions; the convolutions alone set the field
        if isinstance(m, torch.nn.InstanceNorm2d):
            d.net[i] = torch.nn.Identity()
    x = torch.zeros(1, 3, 256, 256, requires_grad=True)
    d(x, x)[0, 0, 15, 15].backward()
    rows = torch.nonzero(x.grad[0].abs().sum((0, 2)))
    assert rows.max() - rows.min() + 1 == 70


def test_resume_continues_exactly(corpus, tmp_path):
    torch.set_num_threads(TORCH_THREADS)
    frames = corpus[0][:6]
    kw = dict(size=32, base=8, batch=2, sample_every=0)
    see.train([], tmp_path / "a", tiny(steps=6, **kw), device="cpu", progress=False, frames=frames)
    see.train([], tmp_path / "b", tiny(steps=3, **kw), device="cpu", progress=False, frames=frames)
    r = see.train([], tmp_path / "b", tiny(steps=6, **kw), resume=True, device="cpu", progress=False, frames=frames)
    assert r["step"] == 6
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True)["generator"] for p in (tmp_path / "a", tmp_path / "b"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_cli_train_resume_and_errors(archive, tmp_path):
    from rereel.cli import app

    runner = CliRunner()
    model = tmp_path / "m"
    args = ["see", "train", str(archive / WATER), "--model", str(model), "--size", "32", "--max-frames", "8",
            "--batch", "2", "--sample-every", "2", "--device", "cpu"]
    r = runner.invoke(app, args + ["--steps", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, args + ["--steps", "3", "--resume"])
    assert r.exit_code == 0 and "trained 3 steps" in r.output, r.output
    # Fewer steps than the model has: it printed "trained 3 steps" and wrote 2 as its step count.
    r = runner.invoke(app, args + ["--steps", "2", "--resume"])
    assert isinstance(r.exception, RereelError) and "trained 3 steps already" in str(r.exception), r.output
    assert '"steps": 3' in (model / "config.json").read_text()
    r = runner.invoke(app, args + ["--steps", "3"])
    assert isinstance(r.exception, RereelError) and "--resume" in str(r.exception)
    r = runner.invoke(app, ["see", "train", str(archive / WATER), "--model", str(tmp_path / "x"), "--recipe", "paint"])
    assert isinstance(r.exception, RereelError) and "recipe" in str(r.exception)
    r = runner.invoke(app, ["see", "render", str(archive / WATER), "--model", str(tmp_path / "none"), "-o", str(tmp_path / "o.mp4")])
    assert isinstance(r.exception, RereelError) and "no such model folder" in str(r.exception)
    with pytest.raises(RereelError, match="no such file"):
        see.train([tmp_path / "absent"], tmp_path / "y", tiny(), device="cpu", progress=False)


def test_live_model_learns_the_full_models_output_and_old_models_still_load(archive, corpus, trained, tmp_path):
    import shutil

    model_dir, result = trained
    assert (model_dir / "live.pt").exists() and result["live_l1"] is not None
    frames = [f[:72, :] for f in corpus[1][::5]]  # held-out corpus frames, 16:9-ish
    full, live = see.Seer(model_dir, smooth=0, device="cpu", live=False), see.Seer(model_dir, smooth=0, device="cpu")
    assert (full.network, live.network) == ("full", "live")
    # The reference is the full generator in PyTorch, run here by hand, not through the Seer.
    ref = []
    for f in frames:
        x = to_tensor(see.degrade(see.resize(f, round(f.shape[1] * SIZE / 72), SIZE))[None], torch.device("cpu"))
        w = x.shape[3]
        x = torch.nn.functional.pad(x, (0, -w % full.gen.multiple, 0, 0), mode="reflect")
        with torch.no_grad():
            ref.append(to_uint8(full.gen(x)[:, :, :, :w])[0].astype(int))
    assert all(np.abs(full.see(f).astype(int) - r).max() <= 2 for f, r in zip(frames, ref))  # ONNX Runtime, same images
    torch.manual_seed(1)
    untrained = UNetGenerator(SIZE, see.live_width(live.cfg), dropout=0)
    init_weights(untrained)
    live_err = np.mean([np.abs(live.see(f).astype(int) - r).mean() for f, r in zip(frames, ref)])
    live._run = untrained.eval()
    untrained_err = np.mean([np.abs(live.see(f).astype(int) - r).mean() for f, r in zip(frames, ref)])
    assert live_err < 0.5 * untrained_err, (live_err, untrained_err)
    # A model from before live models (no live.pt), or trained on since its live model was made, sees with the full one.
    old = tmp_path / "old"
    shutil.copytree(model_dir, old, ignore=shutil.ignore_patterns("*.onnx", "samples"))
    (old / "live.pt").unlink()
    seer = see.Seer(old, smooth=0, device="cpu")
    assert seer.network == "full" and np.abs(seer.see(frames[0]).astype(int) - ref[0]).max() <= 2
    stale = torch.load(model_dir / "live.pt", weights_only=True)
    torch.save({**stale, "step": stale["step"] - 1}, old / "live.pt")
    assert see.Seer(old, smooth=0, device="cpu").network == "full"


def test_a_training_size_too_small_for_the_discriminator_is_refused():
    """Size 16 passed the check, then failed at the first step with PyTorch's error (the patch
    discriminator's instance norm on 1x1 maps); 32 trains (the tests train at 32)."""
    from rereel.learn.pix2pix import depth_for

    for size in (16, 8, 48, 0):
        with pytest.raises(ValueError, match="power of two of at least 32"):
            depth_for(size)
    assert depth_for(32) == 5 and depth_for(256) == 8
