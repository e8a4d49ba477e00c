"""Commands of the `learn` layer: `rereel autoencoder ...` (VAE-GAN) and `rereel see ...` (pix2pix).

Thin: each command checks its arguments, calls rereel.learn, and prints where the result went.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rereel.cli import app
from rereel.errors import RereelError

autoencoder_app = typer.Typer(help="Autoencode a film (VAE-GAN): train, render, walk.", no_args_is_help=True)
see_app = typer.Typer(help="Learning to see (pix2pix): train on a corpus, render a video through it.", no_args_is_help=True)
app.add_typer(autoencoder_app, name="autoencoder")
app.add_typer(see_app, name="see")
out = Console(highlight=False)

MODEL = typer.Option(..., "--model", "-m", help="Model folder (checkpoint.pt, config.json, samples/).")
DEVICE = typer.Option(None, "--device", help="cuda, mps or cpu (default: the best there is; or $REREEL_DEVICE).")


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise RereelError(f"--{name} must be at least 1 (got {value})")


@autoencoder_app.command("train")
def autoencoder_train(
    videos: list[Path] = typer.Argument(..., help="Films (or folders of films) to learn."),
    model: Path = MODEL,
    size: str = typer.Option("256x144", "--size", help="Model frame size WIDTHxHEIGHT (sides divisible by 4)."),
    latent: int = typer.Option(200, "--latent", help="Latent dimensions."),
    epochs: int = typer.Option(6, "--epochs", help="Passes over the frames."),
    every: int = typer.Option(1, "--every", help="Train on every Nth frame."),
    batch: int = typer.Option(32, "--batch", help="Frames per step."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Save a checkpoint every N steps (0: only at the end)."),
    memory: int = typer.Option(2048, "--memory-mb", help="Memory for frames: all held if they fit, else a shuffle buffer this size."),
    pixel_weight: float = typer.Option(1.0, "--pixel-weight", help="Pixel L1 anchor beside the learned similarity (0: Larsen's loss alone)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model in --model exactly where it stopped."),
    device: str | None = DEVICE,
) -> None:
    """Train a VAE-GAN (Larsen et al. 2016) on every (Nth) frame of the films."""
    from rereel.learn import autoencoder as ae

    for name, value in (("latent", latent), ("epochs", epochs), ("every", every), ("batch", batch)):
        _positive(name, value)
    w, h = ae.parse_size(size)
    cfg = ae.AutoencoderConfig(width=w, height=h, latent=latent, epochs=epochs, batch=batch, every=every,
                               checkpoint_every=checkpoint_every, budget_mb=memory, pixel=pixel_weight)
    result = ae.train(videos, model, cfg, resume=resume, device=device)
    out.print(f"trained {result['step']} steps on {result['frames']} frames; model in {model}, samples in {model / 'samples'}")


@autoencoder_app.command("render")
def autoencoder_render(
    video: Path = typer.Argument(..., help="Film to reconstruct (need not be one the model saw)."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="Output MP4."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Source on the left, reconstruction on the right."),
    upscale: bool = typer.Option(True, "--upscale/--model-size", help="Upscale to the source's size, or keep the model's."),
    device: str | None = DEVICE,
) -> None:
    """Reconstruct a film frame by frame through the latent mean, with its fps and audio."""
    from rereel.learn import autoencoder as ae

    path = ae.render(video, model, output, side_by_side=side_by_side, upscale=upscale, device=device)
    out.print(f"wrote {path}")


@autoencoder_app.command("walk")
def autoencoder_walk(
    frames: list[str] = typer.Argument(..., help="Two or more frames: image files or VIDEO@SECONDS."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="Output MP4."),
    seconds: float = typer.Option(3.0, "--seconds", help="Seconds from each frame to the next."),
    fps: float = typer.Option(24.0, "--fps"),
    scale: int = typer.Option(2, "--scale", help="Upscale the model-size frames by this factor."),
    device: str | None = DEVICE,
) -> None:
    """A video travelling through latent space between the given frames."""
    from rereel.learn import autoencoder as ae

    if seconds <= 0 or fps <= 0:
        raise RereelError("--seconds and --fps must be positive")
    _positive("scale", scale)
    path = ae.walk(frames, model, output, seconds=seconds, fps=fps, upscale=scale, device=device)
    out.print(f"wrote {path}")


@see_app.command("train")
def see_train(
    corpus: list[Path] = typer.Argument(..., help="Images, videos, or folders of them: the one kind of thing to see."),
    model: Path = MODEL,
    size: int = typer.Option(256, "--size", help="Square training size (a power of two)."),
    recipe: str = typer.Option("degrade", "--recipe", help="How inputs are made: degrade (Gloomy Sunday) or edges (Canny)."),
    steps: int = typer.Option(10000, "--steps", help="Training steps (total, also when resuming)."),
    batch: int = typer.Option(4, "--batch"),
    sample_every: int = typer.Option(500, "--sample-every", help="Write a sample sheet every N steps."),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every", help="Save a checkpoint every N steps."),
    max_frames: int = typer.Option(2000, "--max-frames", help="Corpus images held in memory (video frames sampled evenly)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model in --model exactly where it stopped."),
    device: str | None = DEVICE,
) -> None:
    """Train a pix2pix on a corpus alone: inputs are made from the corpus images on the fly."""
    from rereel.learn import see

    for name, value in (("steps", steps), ("batch", batch), ("max-frames", max_frames)):
        _positive(name, value)
    try:
        see.depth_for(size)
    except ValueError as e:
        raise RereelError(str(e)) from None
    see.recipe_fn(recipe)
    cfg = see.SeeConfig(size=size, recipe=recipe, steps=steps, batch=batch, sample_every=sample_every,
                        checkpoint_every=checkpoint_every, max_frames=max_frames)
    result = see.train(corpus, model, cfg, resume=resume, device=device)
    out.print(f"trained {result['step']} steps on {result['frames']} corpus images; model in {model}, samples in {model / 'samples'}")


@see_app.command("render")
def see_render(
    video: Path = typer.Argument(..., help="Video to see through the model."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="Output MP4."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Source on the left, what the model sees on the right."),
    smooth: float = typer.Option(0.5, "--smooth", help="Share of the previous output blended in (0: none), against flicker."),
    upscale: bool = typer.Option(True, "--upscale/--model-size", help="Upscale to the source's size, or keep the model's."),
    device: str | None = DEVICE,
) -> None:
    """Turn a video into the corpus: each frame through the input recipe and the generator."""
    from rereel.learn import see

    path = see.render(video, model, output, side_by_side=side_by_side, smooth=smooth, upscale=upscale, device=device)
    out.print(f"wrote {path}")
