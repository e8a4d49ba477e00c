"""The film autoencoder (VAE-GAN): it learns, renders with fps and audio kept, and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rereel.errors import MediaError, RereelError
from rereel.learn import autoencoder as ae
from rereel.learn.frames import cover
from rereel.learn.toolkit import to_tensor
from rereel.media import decode_frames, probe

WATER = "cc0_mdn_stream_of_water.mp4"  # 3.2 s, 30 fps, with audio


def tiny(**kw) -> ae.AutoencoderConfig:
    base = dict(width=64, height=36, latent=32, base=16, epochs=16, batch=8, every=2, checkpoint_every=0, seed=0, lr=1e-3)
    return ae.AutoencoderConfig(**{**base, **kw})


def held_out_error(model, frames) -> float:
    model.eval()
    with torch.no_grad():
        x = to_tensor(frames, torch.device("cpu"))
        return (model.reconstruct(x) - x).pow(2).mean().item()


@pytest.fixture(scope="module")
def trained(archive, tmp_path_factory):
    torch.set_num_threads(2)
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
    assert result["held"] and result["step"] == 16 * (result["frames"] // 8)
    assert trained_err < 0.6 * untrained, (trained_err, untrained)
    sheets = sorted((model_dir / "samples").glob("epoch-*.png"))
    assert len(sheets) == 16  # one per epoch: originals above reconstructions


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
    torch.set_num_threads(2)
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
