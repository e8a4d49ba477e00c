"""The film autoencoder (VAE-GAN): it learns, renders with fps and audio kept, and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TORCH_THREADS
from typer.testing import CliRunner

from rereel.errors import MediaError, RereelError
from rereel.learn import autoencoder as ae
from rereel.learn.frames import cover
from rereel.learn.toolkit import to_tensor
from rereel.media import decode_frames, probe

WATER = "cc0_mdn_stream_of_water.mp4"  # 3.2 s, 30 fps, with audio


def tiny(**kw) -> ae.AutoencoderConfig:
    base = dict(width=64, height=36, latent=32, base=16, epochs=10, steps=0, batch=8, every=2, checkpoint_every=0,
                sample_every=0, seed=0, lr=1e-3)
    return ae.AutoencoderConfig(**{**base, **kw})


def held_out_error(model, frames) -> float:
    model.eval()
    with torch.no_grad():
        x = to_tensor(frames, torch.device("cpu"))
        return (model.reconstruct(x) - x).pow(2).mean().item()


@pytest.fixture(scope="module")
def trained(archive, tmp_path_factory):
    torch.set_num_threads(TORCH_THREADS)
    model_dir = tmp_path_factory.mktemp("ae") / "model"
    result = ae.train([archive / WATER], model_dir, tiny(), device="cpu", progress=False)
    return model_dir, result


def test_training_beats_the_untrained_model_on_held_out_frames(archive, trained):
    model_dir, result = trained
    # Trained on the even frames (every=2); the odd ones were never seen.
    held = np.stack([cover(d, 64, 36) for d in decode_frames(archive / WATER) if d.index % 2 == 1])
    torch.manual_seed(0)
    untrained = held_out_error(ae.build(tiny()), held)
    model, cfg, _ = ae.load_model(model_dir, "cpu")
    trained_err = held_out_error(model, held)
    assert result["held"] and result["step"] == 10 * (result["frames"] // 8)
    assert trained_err < 0.6 * untrained, (trained_err, untrained)
    sheets = sorted((model_dir / "samples").glob("step-*.png"))
    # sample_every=0: one sheet per epoch but the last, whose sheet is final.png
    assert len(sheets) == 9 and (model_dir / "samples" / "final.png").exists()


def test_render_keeps_frames_fps_and_audio(archive, trained, tmp_path):
    model_dir, _ = trained
    src = archive / WATER
    out = ae.render(src, model_dir, tmp_path / "r.mp4", side_by_side=True, device="cpu", progress=False)
    a, b = probe(src), probe(out)
    assert b.has_audio and a.has_audio
    assert abs(a.fps - b.fps) < 0.01
    assert sum(1 for _ in decode_frames(out)) == sum(1 for _ in decode_frames(src))
    assert b.width == 2 * (b.height * 64 // 36) or abs(b.width / b.height - 2 * 64 / 36) < 0.02
    assert abs(b.duration - a.duration) < 0.2
    small = ae.render(src, model_dir, tmp_path / "s.mp4", upscale=False, device="cpu", progress=False)
    assert probe(small).display_size == (64, 36)


def test_walk_travels_between_frames(archive, trained, tmp_path):
    model_dir, _ = trained
    out = tmp_path / "walk.mp4"
    result = CliRunner().invoke(_app(), ["autoencoder", "walk", f"{archive / WATER}@0.5", f"{archive / WATER}@2.5",
                                         f"{archive / WATER}@1", "--model", str(model_dir), "-o", str(out),
                                         "--seconds", "0.5", "--fps", "10", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    frames = [d.rgb(128, 72) for d in decode_frames(out)]
    # 2 legs of 0.5 s at 10 fps, each starting on its given frame, then the last given frame.
    assert len(frames) == 2 * 5 + 1 and frames[0].shape == (72, 128, 3)
    steps = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    # Every step moves: a joint (given frame) written twice would show as a still step
    # (an identical frame re-encoded differs by well under one grey level).
    assert min(steps) > 0.15 * float(np.median(steps)), steps


def test_resume_continues_exactly(archive, tmp_path):
    torch.set_num_threads(TORCH_THREADS)
    cfg = dict(width=32, height=20, latent=8, base=8, batch=16, every=3)
    straight = ae.train([archive / WATER], tmp_path / "a", tiny(epochs=2, **cfg), device="cpu", progress=False)
    first = ae.train([archive / WATER], tmp_path / "b", tiny(epochs=1, **cfg), device="cpu", progress=False)
    resumed = ae.train([], tmp_path / "b", tiny(epochs=2, **cfg), resume=True, device="cpu", progress=False)
    assert resumed["step"] == straight["step"] == 2 * first["step"] > 0
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True)["model"] for p in (tmp_path / "a", tmp_path / "b"))
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k


def test_bad_inputs_are_clear_errors(media, tmp_path):
    with pytest.raises(MediaError, match="audio_only"):
        ae.train([media / "odd" / "audio_only_apollo15_opus.mp4"], tmp_path / "m", tiny(), device="cpu", progress=False)
    with pytest.raises(RereelError, match="no such model folder"):
        ae.render(media / "archive" / WATER, tmp_path / "nope", tmp_path / "o.mp4", device="cpu")
    with pytest.raises(RereelError, match="divisible by 4"):
        ae.parse_size("250x141")
    result = CliRunner().invoke(_app(), ["autoencoder", "render", str(media / "archive" / WATER), "--model",
                                         str(tmp_path / "nope"), "-o", str(tmp_path / "o.mp4")])
    assert isinstance(result.exception, RereelError) and "no such model folder" in str(result.exception)


def _app():
    from rereel.cli import app

    return app


def test_training_options_that_are_no_usable_numbers_are_refused(archive, tmp_path):
    """--minutes nan trained with no budget; a negative --pixel-weight or --checkpoint-every was taken."""
    for option, value, said in (("--minutes", "nan", "--minutes must be a positive number"),
                                ("--minutes", "inf", "--minutes must be a positive number"),
                                ("--pixel-weight", "-1", "--pixel-weight must be at least 0"),
                                ("--checkpoint-every", "-5", "--checkpoint-every must be at least 0")):
        result = CliRunner().invoke(_app(), ["autoencoder", "train", str(archive / WATER), "--model",
                                             str(tmp_path / "m"), option, value])
        assert isinstance(result.exception, RereelError) and said in str(result.exception), (option, result.output)
    assert not (tmp_path / "m").exists()


# --- issue 16: presets, the --minutes budget, and `eval` ------------------------------------------

TEARS = "ccby_zwm_tears_of_steel_10s.mp4"  # 10 s at 24 fps: 5 shots (the count, seen by looking)


def laptop(**kw) -> ae.AutoencoderConfig:
    # The laptop preset's recipe (VAE, channels-last, one thread), shrunk to train in a second.
    return ae.preset_config("laptop", **{**dict(latent=16, base=8, hidden=64, steps=100_000, every=3,
                                                 sample_every=0, checkpoint_every=0), **kw})


@pytest.fixture(scope="module")
def budgeted(archive, tmp_path_factory):
    """A laptop-preset model trained under a budget of 0.02 minutes (1.2 s, decoding included)."""
    model_dir = tmp_path_factory.mktemp("laptop") / "model"
    return model_dir, ae.train([archive / WATER], model_dir, laptop(every=1), device="cpu", progress=False, minutes=0.02)


@pytest.fixture(scope="module")
def encoder():
    from rereel.encoders import create_encoder

    return create_encoder()


def _embed(encoder):
    from rereel.learn.toolkit import resize

    ew, eh = encoder.input_size
    return lambda frames: encoder.embed(np.stack([resize(f, ew, eh) for f in frames])).embedding


@pytest.fixture(scope="module")
def tears(archive, encoder):
    """The 10 s clip sampled at 64x36 with the library's detector, and its frames' features."""
    from rereel.learn import evaluate as ev
    from rereel.shots import DEFAULT_DETECTOR, create_detector

    sample = ev.sample_film(archive / TEARS, 64, 36, create_detector(DEFAULT_DETECTOR, 24.0))
    return sample, ev.embed_all(sample.frames, _embed(encoder))


def test_minutes_budget_stops_cleanly_and_resume_continues(budgeted, tmp_path):
    import shutil

    model_dir, result = budgeted
    assert result["stopped"] == "minutes" and 1 <= result["step"] < 100_000
    # The budget is checked after every step (6 an epoch here), not every epoch: at most one step
    # begins after it is spent (one does when decoding the clip spends it all).
    assert result["late_steps"] <= 1, result
    assert (model_dir / "samples" / "final.png").exists()
    saved = torch.load(model_dir / "checkpoint.pt", weights_only=True)
    assert saved["step"] == result["step"] and saved["config"]["preset"] == "laptop"
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    more = ae.train([], copy, laptop(every=1), resume=True, device="cpu", progress=False, max_steps=result["step"] + 3)
    assert more["step"] == result["step"] + 3 and more["stopped"] == "steps"


def test_eval_of_a_briefly_trained_model_is_in_range(archive, budgeted, encoder, monkeypatch):
    import json

    import rereel.encoders

    monkeypatch.setattr(rereel.encoders, "create_encoder", lambda: encoder)  # the library's default, built once
    model_dir, _ = budgeted
    out = CliRunner().invoke(_app(), ["autoencoder", "eval", str(archive / TEARS), "--model", str(model_dir),
                                      "--json", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    s = json.loads(out.output.strip().splitlines()[-1])
    assert list(s) == ["psnr", "ssim", "baseline_psnr", "shot_top1", "time_top1", "chance_shot", "frames", "shots", "size"]
    assert s["frames"] == 40 and s["shots"] == 5 and s["size"] == "64x36"  # 10 s at 4 a second
    assert 5 < s["psnr"] < 40 and 8 < s["baseline_psnr"] < 30 and -1 < s["ssim"] < 1
    assert 0.2 < s["chance_shot"] < 1 and 0 <= s["shot_top1"] <= 1 and 0 <= s["time_top1"] <= 1


def test_recognisability_of_identity_is_one_and_of_the_mean_frame_about_chance(tears, encoder, tmp_path):
    from rereel.learn import evaluate as ev

    sample, src = tears
    assert sample.shots == 5 and len(sample.frames) == 40
    s = ev.evaluate(sample, lambda f: f, _embed(encoder), src_emb=src).scores
    assert s["shot_top1"] == 1.0 and s["time_top1"] == 1.0 and s["psnr"] == 100.0 and s["ssim"] > 0.999
    mean = sample.frames.astype(np.float32).mean(0).round().astype(np.uint8)
    flat = ev.evaluate(sample, lambda f: np.repeat(mean[None], len(f), 0), _embed(encoder), src_emb=src)
    m = flat.scores
    # The same image for every frame tells nothing about any of them: a guess among all frames.
    assert abs(m["shot_top1"] - m["chance_shot"]) < 0.01, m
    assert m["time_top1"] <= 0.15 and abs(m["baseline_psnr"] - m["psnr"]) < 0.01, m
    sheet = flat.write_sheet(tmp_path / "sheet.png")
    from PIL import Image

    assert Image.open(sheet).size == (3 * 256 + 2 * 2, 2 * 144 + 2)  # 3 columns, 2 rows, enlarged 4x


def test_models_saved_before_presets_still_load_and_walk(archive, tmp_path):
    """A config saved before #16 has none of its fields; it loads as the broad model it was."""
    import json

    old = tmp_path / "old"
    ae.train([archive / WATER], old, tiny(epochs=1, width=32, height=20, latent=8, base=8, batch=16, every=3, threads=1),
             device="cpu", progress=False)
    ckpt = torch.load(old / "checkpoint.pt", weights_only=True)
    new_fields = {"hidden", "steps", "adversarial", "channels_last", "threads", "sample_every", "preset"}
    ckpt["config"] = {k: v for k, v in ckpt["config"].items() if k not in new_fields}
    torch.save(ckpt, old / "checkpoint.pt")
    (old / "config.json").write_text(json.dumps(ckpt["config"]))
    model, cfg, _ = ae.load_model(old, "cpu")
    assert cfg.preset == "broad" and cfg.hidden == 2048 and cfg.adversarial
    out = ae.walk([f"{archive / WATER}@0.5", f"{archive / WATER}@2"], old, tmp_path / "w.mp4", seconds=0.2, fps=10, device="cpu")
    assert sum(1 for _ in decode_frames(out)) == 3


def test_laptop_model_renders_and_walks(archive, budgeted, tmp_path):
    model_dir, _ = budgeted
    out = ae.render(archive / WATER, model_dir, tmp_path / "r.mp4", upscale=False, device="cpu", progress=False)
    assert probe(out).display_size == (64, 36)
    assert sum(1 for _ in decode_frames(out)) == sum(1 for _ in decode_frames(archive / WATER))
    walk = ae.walk([f"{archive / WATER}@0.5", f"{archive / WATER}@2"], model_dir, tmp_path / "w.mp4", seconds=0.2, fps=10,
                   device="cpu")
    assert sum(1 for _ in decode_frames(walk)) == 3
