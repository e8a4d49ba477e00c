"""Commands of the `learn` layer: `rereel autoencoder ...` (VAE-GAN) and `rereel see ...` (pix2pix).

Thin: each command checks its arguments, calls rereel.learn, and prints where the result went.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rereel.cli import app, examples
from rereel.cli.library import device_checked
from rereel.media.find import named_files
from rereel.outputs import check_not_a_source, check_writable
from rereel.errors import RereelError

autoencoder_app = typer.Typer(help="Autoencode a film (VAE-GAN): train, eval, render, walk.", no_args_is_help=True)
see_app = typer.Typer(help="Learning to see (pix2pix): train on a corpus, render a video through it.", no_args_is_help=True)
app.add_typer(autoencoder_app, name="autoencoder")
app.add_typer(see_app, name="see")
out = Console(highlight=False, markup=False, emoji=False)  # file names: see cli.labelled

MODEL = typer.Option(..., "--model", "-m", metavar="DIR", help="Model folder (checkpoint.pt, config.json, samples/).")
DEVICE = typer.Option(None, "--device", metavar="cuda|mps|cpu", callback=device_checked,
                      help="Where to run (default: the best there is; or $REREEL_DEVICE).")


def _output_ok(output: Path, sources: list[Path]) -> None:
    """Refuse, before the model is loaded, an output that could not be written or that is one of
    the files read (the film itself: it was replaced by its own rendering)."""
    check_writable(output)
    check_not_a_source([output], [p for p in sources if p.is_file()])


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise RereelError(f"--{name} must be at least 1 (got {value})")


def _model_folder(model: Path) -> None:
    """Refuse, before training, a --model that names a file: checkpoints and sample sheets go inside."""
    if model.exists() and not model.is_dir():
        raise RereelError(f"--model {model}: is a file, not a model folder")


@autoencoder_app.command("train", epilog=examples(
    "rereel autoencoder train film.mp4 --model models/film --preset laptop --minutes 10",
    "rereel autoencoder train film.mp4 --model models/film --preset laptop --minutes 10 --resume",
    "rereel autoencoder train film.mp4 --model models/film --preset broad --device cuda"))
def autoencoder_train(
    videos: list[Path] = typer.Argument(..., metavar="VIDEO...", help="Films (or folders of films) to learn."),
    model: Path = MODEL,
    preset: str = typer.Option(None, "--preset", metavar="laptop|broad", help=(
        "broad (default): Broad's model, 256x144, latent 200, the paper's widths, VAE-GAN; a GPU model. "
        "laptop: 64x36, latent 128, narrow layers, pixel loss without the discriminator, one thread; "
        "its default 3000 steps take about 10 minutes on this project's 2-core CPU when it is quiet (85 images/s), "
        "1 to 1.5 hours under other jobs' load (8 to 15 images/s); "
        "broad's 1000 steps (or 6 epochs, if longer) would take about 18 hours there (0.5 images/s at 256x144), "
        "minutes on a GPU. "
        "With --resume, the model's own.")),
    minutes: float = typer.Option(None, "--minutes", metavar="MINUTES", help=(
        "Time budget: stop after the step that spends it, with a checkpoint and samples/final.png "
        "(--resume carries on).")),
    steps: int = typer.Option(None, "--steps", metavar="N", help="Train at least N steps in all, however short the films (preset: laptop 3000, broad 1000)."),
    epochs: int = typer.Option(None, "--epochs", metavar="N", help="...or at least N passes over the frames, if longer (preset: laptop 0, broad 6)."),
    size: str = typer.Option(None, "--size", metavar="WxH", help="Model frame size, sides divisible by 4 (preset: laptop 64x36, broad 256x144)."),
    latent: int = typer.Option(None, "--latent", metavar="N", help="Latent dimensions (preset: laptop 128, broad 200)."),
    every: int = typer.Option(None, "--every", metavar="N", help="Train on every Nth frame (default 1)."),
    batch: int = typer.Option(None, "--batch", metavar="N", help="Frames per step (preset: laptop 16, broad 32)."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", metavar="N", help="Save a checkpoint every N steps (0: only at the end; default 500)."),
    memory: int = typer.Option(None, "--memory-mb", metavar="MB", help="Memory for frames: all held if they fit, else a shuffle buffer this size (default 2048)."),
    pixel_weight: float = typer.Option(None, "--pixel-weight", metavar="WEIGHT", help="broad: pixel L1 anchor beside the learned similarity (0: Larsen's loss alone; default 1)."),
    threads: int = typer.Option(None, "--threads", metavar="N", help="CPU threads for training (0: torch's default; preset: laptop 1, broad 0)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model in --model exactly where it stopped."),
    device: str | None = DEVICE,
) -> None:
    """Train the autoencoder (Larsen et al. 2016's VAE-GAN, or the laptop preset's VAE) on the films' frames."""
    from rereel.learn import autoencoder as ae

    _model_folder(model)
    for name, value in (("latent", latent), ("every", every), ("batch", batch)):
        if value is not None:
            _positive(name, value)
    for name, value in (("steps", steps), ("epochs", epochs), ("threads", threads), ("checkpoint-every", checkpoint_every),
                        ("pixel-weight", pixel_weight), ("memory-mb", memory)):
        if value is not None and not value >= 0:  # `not >=`: NaN too
            raise RereelError(f"--{name} must be at least 0 (got {value})")
    if minutes is not None and not (0 < minutes < float("inf")):  # NaN and inf fail it too
        raise RereelError(f"--minutes must be a positive number of minutes (got {minutes})")
    given = {"--preset": preset, "--size": size, "--latent": latent, "--batch": batch, "--every": every,
             "--memory-mb": memory, "--pixel-weight": pixel_weight}
    given = {k: v for k, v in given.items() if v is not None}
    if resume:
        preset = preset or ae.saved_preset(model)  # the schedule's defaults are the model's preset's
    w, h = ae.parse_size(size) if size else (None, None)
    cfg = ae.preset_config(preset or "broad", width=w, height=h, latent=latent, epochs=epochs, steps=steps, batch=batch,
                           every=every, checkpoint_every=checkpoint_every, budget_mb=memory, pixel=pixel_weight,
                           threads=threads)
    if cfg.steps == 0 and cfg.epochs == 0:
        raise RereelError("--steps and --epochs are both 0: nothing to train")
    result = ae.train(videos, model, cfg, resume=resume, device=device, minutes=minutes, given=given,
                      threads_given=threads is not None)
    why = " (the --minutes budget was spent; --resume carries on)" if result["stopped"] == "minutes" else ""
    out.print(f"trained {result['step']} steps on {result['frames']} frames{why}; model in {model}, "
              f"final samples {result['sheet']}")


@autoencoder_app.command("eval", epilog=examples(
    "rereel autoencoder eval film.mp4 --model models/film",
    "rereel autoencoder eval film.mp4 --model models/film --json > scores.json"))
def autoencoder_eval(
    video: Path = typer.Argument(..., metavar="VIDEO", help="Film to score the model on (usually the one it learned)."),
    model: Path = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: psnr, ssim, baseline_psnr, shot_top1, "
                                 "time_top1, chance_shot, frames, shots, size."),
    centre: bool = typer.Option(True, "--centre/--plain-cosine", help="Centre each set's features before the cosine "
                                "(against hubs: docs/learn.md), or compare them as they are."),
    sheet: Path = typer.Option(None, "--sheet", metavar="FILE", help="Sample sheet of the best, median and worst frames "
                               "(default: MODEL/samples/eval-VIDEO.png; not written with --json)."),
    device: str | None = DEVICE,
) -> None:
    """Score a model on a film: PSNR, SSIM, and whether an image network recognises each reconstruction's shot and moment.

    4 frames a second, at the model's size. shot_top1: the share of reconstructions whose nearest
    frame (the library's image encoder, cosine of centred features) is in their own shot (the
    library's shot detector); time_top1: within 0.5 s of their own; chance_shot: a random
    guess's shot_top1; baseline_psnr: the film's mean frame as every reconstruction.
    """
    if sheet is not None:
        _output_ok(sheet, [video])  # before the evaluation's minutes, not after them
    import json

    import numpy as np

    from rereel.encoders import create_encoder
    from rereel.learn import evaluate as ev
    from rereel.learn.toolkit import resize
    from rereel.media import probe
    from rereel.shots import DEFAULT_DETECTOR, create_detector

    reconstruct, size = ev.model_reconstruct(model, device)
    encoder = create_encoder()
    ew, eh = encoder.input_size

    def embed(frames):
        return encoder.embed(np.stack([resize(f, ew, eh) for f in frames])).embedding

    detector = create_detector(DEFAULT_DETECTOR, probe(video).fps)
    sample = ev.sample_film(video, size[0], size[1], detector, progress=not as_json)
    result = ev.evaluate(sample, reconstruct, embed, centre=centre)
    if as_json:
        print(json.dumps(result.scores))
        return
    s = result.scores
    out.print(f"{video.name}: {s['frames']} frames (4 a second) in {s['shots']} shots, at {s['size']}")
    out.print(f"  psnr       {s['psnr']:6.2f} dB   (mean frame: {s['baseline_psnr']:.2f} dB)")
    out.print(f"  ssim       {s['ssim']:6.3f}")
    out.print(f"  shot_top1  {s['shot_top1']:6.3f}      (chance: {s['chance_shot']:.3f})")
    out.print(f"  time_top1  {s['time_top1']:6.3f}      (nearest frame within 0.5 s)")
    path = result.write_sheet(sheet or Path(model) / "samples" / f"eval-{Path(video).stem}.png")
    out.print(f"sample sheet (best, median, worst; originals above): {path}")


@autoencoder_app.command("render", epilog=examples(
    "rereel autoencoder render other.mp4 --model models/film -o other-dream.mp4 --side-by-side",
    "rereel autoencoder render film.mp4 --model models/film -o small.mp4 --model-size"))
def autoencoder_render(
    video: Path = typer.Argument(..., metavar="VIDEO", help="Film to reconstruct (need not be one the model saw)."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Output MP4."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Source on the left, reconstruction on the right."),
    upscale: bool = typer.Option(True, "--upscale/--model-size", help="Upscale to the source's size, or keep the model's."),
    device: str | None = DEVICE,
) -> None:
    """Reconstruct a film frame by frame through the latent mean, with its fps and audio."""
    from rereel.learn import autoencoder as ae

    _output_ok(output, [video])
    path = ae.render(video, model, output, side_by_side=side_by_side, upscale=upscale, device=device)
    out.print(f"wrote {path}")


@autoencoder_app.command("walk", epilog=examples(
    "rereel autoencoder walk --model models/film -o walk.mp4 film.mp4@12.5 film.mp4@80 still.png"))
def autoencoder_walk(
    frames: list[str] = typer.Argument(..., metavar="FRAME...", help="Two or more frames: image files or VIDEO@SECONDS."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Output MP4."),
    seconds: float = typer.Option(3.0, "--seconds", metavar="SECONDS", help="Seconds from each frame to the next."),
    fps: float = typer.Option(24.0, "--fps", metavar="FPS", help="Frames per second of the video."),
    scale: int = typer.Option(2, "--scale", metavar="N", help="Upscale the model-size frames by this factor."),
    device: str | None = DEVICE,
) -> None:
    """A video travelling through latent space between the given frames."""
    from rereel.learn import autoencoder as ae

    if seconds <= 0 or fps <= 0:
        raise RereelError("--seconds and --fps must be positive")
    _positive("scale", scale)
    _output_ok(output, [p for f in frames for p in named_files(f)])
    path = ae.walk(frames, model, output, seconds=seconds, fps=fps, upscale=scale, device=device)
    out.print(f"wrote {path}")


@see_app.command("train", epilog=examples(
    "rereel see train flowers/ --model models/flowers",
    "rereel see train ocean.mp4 --model models/ocean --recipe edges --steps 20000 --resume"))
def see_train(
    corpus: list[Path] = typer.Argument(..., metavar="PATH...", help="Images, videos, or folders of them: the one kind of thing to see."),
    model: Path = MODEL,
    size: int = typer.Option(None, "--size", metavar="N", help="Square training size (a power of two, 32 at least; default 256; with --resume, the model's own)."),
    recipe: str = typer.Option(None, "--recipe", metavar="degrade|edges", help="How inputs are made: degrade (Gloomy Sunday, the default) or edges (Canny); with --resume, the model's own."),
    steps: int = typer.Option(10000, "--steps", metavar="N", help="Training steps (total, also when resuming)."),
    batch: int = typer.Option(None, "--batch", metavar="N", help="Image pairs per step (default 4; with --resume, the model's own)."),
    sample_every: int = typer.Option(500, "--sample-every", metavar="N", help="Write a sample sheet every N steps."),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every", metavar="N", help="Save a checkpoint every N steps."),
    max_frames: int = typer.Option(None, "--max-frames", metavar="N", help="Corpus images held in memory (video frames sampled evenly; default 2000; with --resume, the model's own)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model in --model exactly where it stopped."),
    device: str | None = DEVICE,
) -> None:
    """Train a pix2pix on a corpus alone: inputs are made from the corpus images on the fly.

    It then distils a small live model (MODEL/live.pt) from the full one: the web page's learning
    to see runs it at camera rate on a CPU.
    """
    from rereel.learn import see

    _model_folder(model)
    for name, value in (("steps", steps), ("batch", batch), ("max-frames", max_frames)):
        if value is not None:
            _positive(name, value)
    if size is not None:
        try:
            see.depth_for(size)
        except ValueError as e:
            raise RereelError(str(e)) from None
    if recipe is not None:
        see.recipe_fn(recipe)
    given = {k: v for k, v in dict(size=size, recipe=recipe, batch=batch, max_frames=max_frames).items() if v is not None}
    cfg = see.SeeConfig(steps=steps, sample_every=sample_every, checkpoint_every=checkpoint_every, **given)
    result = see.train(corpus, model, cfg, resume=resume, device=device, given=given)
    out.print(f"trained {result['step']} steps on {result['frames']} corpus images; model in {model}, samples in {model / 'samples'}")


@see_app.command("render", epilog=examples(
    "rereel see render webcam.mp4 --model models/flowers -o seen.mp4 --side-by-side"))
def see_render(
    video: Path = typer.Argument(..., metavar="VIDEO", help="Video to see through the model."),
    model: Path = MODEL,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="Output MP4."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Source on the left, what the model sees on the right."),
    smooth: float = typer.Option(0.5, "--smooth", metavar="SHARE", help="Share of the previous output blended in (0: none), against flicker."),
    upscale: bool = typer.Option(True, "--upscale/--model-size", help="Upscale to the source's size, or keep the model's."),
    device: str | None = DEVICE,
) -> None:
    """Turn a video into the corpus: each frame through the input recipe and the full generator."""
    from rereel.learn import see

    _output_ok(output, [video])
    path = see.render(video, model, output, side_by_side=side_by_side, smooth=smooth, upscale=upscale, device=device)
    out.print(f"wrote {path}")
