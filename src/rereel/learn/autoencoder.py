"""Autoencode a film: train a VAE-GAN on its frames, reconstruct films with it, walk its latent space."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from rereel.errors import RereelError
from rereel.learn.frames import FilmFrames, check_videos, cover, frame_at
from rereel.learn.toolkit import (
    Precision,
    TrainProgress,
    choose_precision,
    gan_loss,
    load_checkpoint,
    resize,
    rng_state,
    same_inputs,
    same_settings,
    save_checkpoint,
    set_rng_state,
    to_tensor,
    to_uint8,
    write_sample_sheet,
)
from rereel.learn.vaegan import VAEGAN, feature_error, kl_divergence, n_downsamples
from rereel.media import VideoWriter, decode_frames, probe
from rereel.media.decode import output_frames

KIND = "autoencoder"


@dataclass
class AutoencoderConfig:
    """Defaults are the `broad` preset; a config.json saved before a field existed loads with its default."""

    width: int = 256
    height: int = 144
    latent: int = 200
    base: int = 64  # channels of the first conv; the paper's 64
    hidden: int = 2048  # the encoder's fully connected layer; the paper's 2048
    epochs: int = 6
    # At least this many steps, however short the footage: 6 epochs of a 10 s clip are 45 steps,
    # nowhere near a recognisable frame; a feature film's 6 epochs are far more than this.
    steps: int = 1000
    batch: int = 32  # Larsen used 64; 32 doubles the steps a short film gets in its 6 epochs
    every: int = 1  # train on every Nth frame
    lr: float = 3e-4  # Larsen used RMSProp at 3e-4; Adam at the same rate with DCGAN's beta1
    # Larsen's gamma: the learned similarity against the GAN loss in the decoder. At 1 the GAN term wins
    # early, when the discriminator is far ahead, and reconstructions drift away from the frames; at 20
    # (per-feature units) the decoder reconstructs first and the GAN term sharpens what it learns.
    gamma: float = 20.0
    # A pixel-space L1 anchor beside the learned similarity. Dis_l features say little about
    # absolute colour and, early in training, little about anything: with the similarity alone
    # 6 epochs of a 70 s clip gave colourless blobs of the right layout. 0 = Larsen's loss as published.
    pixel: float = 1.0
    beta: float = 1.0  # weight of the KL term relative to the similarity term (1 = Larsen's ratio; see train_step)
    equilibrium: float = 0.68  # Larsen's balancing: pause the discriminator when it wins too easily...
    margin: float = 0.35  # ...and the decoder's GAN term when it loses too badly
    # False: a plain VAE on the pixel loss, without the discriminator (train_step says why the laptop
    # preset may want that). The discriminator's weights are still built, so the checkpoint's layout is one.
    adversarial: bool = True
    channels_last: bool = False  # NHWC convolutions: faster with oneDNN on x86 CPUs
    threads: int = 0  # torch threads while training (0: torch's default)
    checkpoint_every: int = 500
    sample_every: int = 500  # a sample sheet every N steps (0: one per epoch), and samples/final.png at the end
    seed: int = 0
    budget_mb: int = 2048  # frames held in memory (see frames.py)
    preset: str = "broad"
    videos: list[str] = field(default_factory=list)
    kind: str = KIND


# `broad` is Broad's model as issue #5 built it: a GPU model. `laptop` is what trained best in
# minutes on 2 CPU cores here (docs/learn.md, "Presets"): small frames, few channels, a narrow
# fully connected layer, channels-last.
PRESETS: dict[str, dict] = {
    "broad": {},
    "laptop": dict(width=64, height=36, latent=128, base=32, hidden=512, epochs=0, steps=3000, batch=16,
                   lr=1e-3, beta=0.2, adversarial=False, channels_last=True, threads=1, checkpoint_every=500,
                   sample_every=500),
}


def preset_config(name: str, **overrides) -> AutoencoderConfig:
    """The preset's config with the given fields changed (None values leave the preset's)."""
    if name not in PRESETS:
        raise RereelError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return AutoencoderConfig(**{**PRESETS[name], "preset": name, **given})


def saved_preset(model_dir: Path) -> str:
    """The preset a saved model was trained with; models from before presets are `broad`'s kind."""
    return AutoencoderConfig(**load_checkpoint(Path(model_dir), KIND)["config"]).preset


# The options a resume keeps as the model has them (see `train`), as the CLI names them.
_SETTINGS = {"--preset": "preset", "--latent": "latent", "--batch": "batch", "--every": "every",
             "--memory-mb": "budget_mb", "--pixel-weight": "pixel"}


def _setting(cfg: AutoencoderConfig, option: str):
    return f"{cfg.width}x{cfg.height}" if option == "--size" else getattr(cfg, _SETTINGS[option])


def _typed(option: str, value):
    """A given option's value as the model's is written: sizes as WxH, numbers as numbers."""
    if option == "--size":
        w, h = parse_size(str(value))
        return f"{w}x{h}"
    return value


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RereelError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 256x144") from None
    if w < 16 or h < 16 or n_downsamples(w, h) < 2:
        raise RereelError(f"size {text!r}: both sides must be at least 16 and divisible by 4 (e.g. 256x144, 128x72)")
    return w, h


def build(cfg: AutoencoderConfig) -> VAEGAN:
    model = VAEGAN(cfg.width, cfg.height, cfg.latent, cfg.base, cfg.hidden)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def train(
    videos: list[Path],
    model_dir: Path,
    cfg: AutoencoderConfig,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    max_steps: int | None = None,
    minutes: float | None = None,
    given: dict[str, object] | None = None,
    threads_given: bool = False,
) -> dict:
    """Train (or resume training) a VAE-GAN on the films' frames. Returns the final losses and step.

    The run lasts max(cfg.steps, cfg.epochs epochs), capped by `max_steps`; `minutes` is a
    wall-clock budget: when spent, training stops after the current step, with a checkpoint
    and samples/final.png, and `--resume` carries on from there. `given`: the options a user
    gave (CLI names and values); on a resume, one that differs from the model's is refused.
    `threads_given`: a resume takes `cfg.threads` instead of the model's.
    """
    model_dir = Path(model_dir)
    given = {option: _typed(option, value) for option, value in (given or {}).items()}
    ckpt = None
    if resume:
        ckpt = load_checkpoint(model_dir, KIND)
        saved = AutoencoderConfig(**ckpt["config"])
        # The architecture and the data order are fixed by the first run: options given that
        # differ are refused. The schedule may grow, and the threads suit the machine it runs on.
        same_settings(model_dir, {option: (value, _setting(saved, option)) for option, value in given.items()})
        saved.epochs, saved.steps, saved.checkpoint_every = cfg.epochs, cfg.steps, cfg.checkpoint_every
        if threads_given:
            saved.threads = cfg.threads
        cfg = saved
        same_inputs(videos, cfg.videos, model_dir, "films")
        videos = [Path(v) for v in cfg.videos]
    else:
        if (model_dir / "checkpoint.pt").exists():
            raise RereelError(f"{model_dir}: already holds a model; pass --resume to continue it, or choose another folder")
        videos = check_videos(videos)
        cfg.videos = [str(Path(v).absolute()) for v in videos]  # a resume may run from another folder
    deadline = time.monotonic() + 60 * minutes if minutes else None
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(videos, model_dir, cfg, ckpt, device, progress, max_steps, deadline)
    finally:
        torch.set_num_threads(threads)  # the caller's setting, whatever the preset wanted while training


def _train(videos: list[Path], model_dir: Path, cfg: AutoencoderConfig, ckpt: dict | None, device: str | None,
           progress: bool, max_steps: int | None, deadline: float | None) -> dict:
    prec = choose_precision(device)
    torch.manual_seed(cfg.seed)
    model = build(cfg).to(prec.device)
    enc, dec, dis = model.encoder, model.decoder, model.discriminator
    opts = {name: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) for name, m in
            (("encoder", enc), ("decoder", dec), ("discriminator", dis))}
    scaler = prec.grad_scaler()
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        for name, opt in opts.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        scaler.load_state_dict(ckpt["scaler"]) if ckpt.get("scaler") else None
        step = ckpt["step"]
        set_rng_state(ckpt["rng"])

    data = FilmFrames(videos, cfg.width, cfg.height, cfg.every, cfg.budget_mb)
    if data.count < 2:  # a batch of one cannot be normalised; its epoch had no whole batch and never ended
        names = ", ".join(Path(v).name for v in videos[:3]) + (f" and {len(videos) - 3} more" if len(videos) > 3 else "")
        kept = "" if cfg.every == 1 else f" with --every {cfg.every}"
        frames = f"{data.count} frame" + ("" if data.count == 1 else "s")
        raise RereelError(f"{names}: {frames} to learn from{kept}; training needs 2 at least")
    if data.count < cfg.batch:
        cfg.batch = max(2, data.count)  # a few seconds of film: one batch of what there is
    per_epoch = data.batches_per_epoch(cfg.batch)
    total = max(cfg.steps, per_epoch * cfg.epochs, 1)
    total = total if max_steps is None else min(total, max_steps)
    sample_every = cfg.sample_every or per_epoch
    # A fixed set of frames, spread over the films, shows progress on the same images every time.
    sheet_frames = _spread_frames(data, videos, cfg, 8)
    losses: dict[str, float] = {}
    stopped = "steps"
    trained, train_s, late = 0, 0.0, 0

    def checkpoint() -> None:
        save_checkpoint(model_dir, {
            "model": model.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in opts.items()},
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "step": step,
            "rng": rng_state(),
        }, asdict(cfg))

    def sheet(name: str) -> Path:
        path = model_dir / "samples" / name
        write_sample_sheet(path, [sheet_frames, _reconstruct(model, sheet_frames, prec)])
        model.train()
        return path

    mode = "held in memory" if data.held else f"streamed through a {data.capacity}-frame shuffle buffer"
    budget = "" if deadline is None else f" or until the --minutes budget is spent ({deadline - time.monotonic():.0f} s left)"
    with TrainProgress(total, step, "autoencoder", enabled=progress, deadline=deadline) as bar:
        bar.log(f"{data.count} frames of {len(videos)} film(s), {mode}; {per_epoch} steps an epoch, "
                f"{total} steps in all{budget}, on {prec.name}, preset {cfg.preset}")
        model.train()
        while step < total and stopped == "steps":
            epoch, skip = divmod(step, per_epoch)
            for i, batch in enumerate(_epoch_batches(data, epoch, cfg, per_epoch)):
                if i < skip:
                    continue  # resuming mid-epoch: the order is the same, skip what was trained on
                if step >= total:
                    break
                t0 = time.perf_counter()
                late += deadline is not None and time.monotonic() >= deadline
                losses = train_step(model, opts, scaler, prec, to_tensor(batch, prec.device), cfg)
                train_s += time.perf_counter() - t0
                trained += len(batch)
                step += 1
                bar.update(step, len(batch), losses)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    checkpoint()
                if step % sample_every == 0 and step < total:
                    path = sheet(f"step-{step:06d}.png")
                    bar.log(f"step {step} (epoch {epoch + 1}): {_fmt(losses)}; samples {path}")
                if deadline is not None and time.monotonic() >= deadline:
                    stopped = "minutes"  # the budget is spent: stop cleanly after this step
                    break
    final = sheet("final.png")
    checkpoint()
    return {"step": step, "losses": losses, "held": data.held, "frames": data.count, "stopped": stopped,
            "images_per_s": trained / train_s if train_s else 0.0, "sheet": final,
            "late_steps": late}  # steps begun after the --minutes budget was spent: at most the one


def _fmt(losses: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in losses.items())


def train_step(model: VAEGAN, opts: dict, scaler, prec: Precision, x: torch.Tensor, cfg: AutoencoderConfig) -> dict:
    """One step of Larsen's Algorithm 1 on a batch x in [-1, 1]; returns the losses."""
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if not cfg.adversarial:
        return _vae_step(model, opts, scaler, prec, x, cfg)
    enc, dec, dis = model.encoder, model.decoder, model.discriminator
    enc_params, dec_params, dis_params = (list(m.parameters()) for m in (enc, dec, dis))
    b = x.shape[0]
    with prec.autocast():
        mu, logvar = enc(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar.float()).exp()
        z_prior = torch.randn_like(mu)
        x_rec, x_prior = dec(torch.cat([z, z_prior])).split(b)
        logits, feats = dis(torch.cat([x, x_rec, x_prior]))
    logits, feats = logits.float(), feats.float()
    l_real, l_rec, l_prior = logits.split(b)
    f_real, f_rec, _ = feats.split(b)
    n_feat = f_real[0].numel()
    # Per-feature units keep Adam's steps the same size at any resolution. The KL is weighed
    # against the similarity as in Larsen's 64x64 model, whose Dis_l had 8x8 positions: at
    # 256x144 Dis_l has 18x32, and the plain ELBO ratio left the KL 9 times weaker, so frames of
    # films the model never saw were encoded far outside the prior and decoded to a flat colour.
    positions = f_real.shape[-1] * f_real.shape[-2]
    similarity = feature_error(f_rec, f_real.detach()) / n_feat
    if cfg.pixel:
        similarity = similarity + cfg.pixel * (x_rec.float() - x.float()).abs().mean()
    kl = kl_divergence(mu.float(), logvar.float()) / n_feat * max(1.0, positions / 64)
    d_real, d_fake = gan_loss(l_real, True), 0.5 * (gan_loss(l_rec, False) + gan_loss(l_prior, False))
    g_fool = 0.5 * (gan_loss(l_rec, True) + gan_loss(l_prior, True))
    # Larsen's equilibrium: a discriminator far ahead stops learning for a step, and a
    # decoder far behind drops the GAN term, so neither collapses the other.
    train_dis = not (d_real.item() < cfg.equilibrium - cfg.margin or d_fake.item() < cfg.equilibrium - cfg.margin)
    train_dec = not (d_real.item() > cfg.equilibrium + cfg.margin or d_fake.item() > cfg.equilibrium + cfg.margin)
    if not (train_dis or train_dec):
        train_dis = train_dec = True
    enc_loss = similarity + cfg.beta * kl
    dec_loss = cfg.gamma * similarity + (g_fool if train_dec else 0.0)
    dis_loss = d_real + d_fake
    # One forward, three gradients, all at the same weights (Larsen's Algorithm 1):
    # each network gets only the gradient of its own loss.
    for params, loss, opt, retain in ((enc_params, enc_loss, opts["encoder"], True),
                                      (dec_params, dec_loss, opts["decoder"], True),
                                      (dis_params, dis_loss, opts["discriminator"], False)):
        if opt is opts["discriminator"] and not train_dis:
            continue
        grads = torch.autograd.grad(scaler.scale(loss), params, retain_graph=retain, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
    for name, opt in opts.items():
        if name != "discriminator" or train_dis:
            scaler.step(opt)
        opt.zero_grad(set_to_none=True)
    scaler.update()
    return {"sim": similarity.item(), "kl": kl.item() * n_feat / max(1.0, positions / 64), "d": dis_loss.item(), "g": g_fool.item()}


def _vae_step(model: VAEGAN, opts: dict, scaler, prec: Precision, x: torch.Tensor, cfg: AutoencoderConfig) -> dict:
    """A plain VAE step: pixel L1 + beta x KL, the discriminator left out.

    On 2 CPU cores the discriminator costs two thirds of each step (it sees three batches and
    is differentiated twice), and in a budget of minutes it does not pay for itself: on the
    10 s Tears of Steel clip, 3 minutes side by side gave 128 steps and 21.3 dB without it
    against 42 steps and 16.5 dB with it (docs/learn.md, "Presets").
    """
    with prec.autocast():
        mu, logvar = model.encoder(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar.float()).exp()
        x_rec = model.decoder(z)
    similarity = (x_rec.float() - x.float()).abs().mean()
    # Per pixel value, as the L1 is: the ELBO of a Laplace likelihood, KL weighed by beta.
    kl = kl_divergence(mu.float(), logvar.float()) / x[0].numel()
    loss = similarity + cfg.beta * kl
    scaler.scale(loss).backward()
    for name in ("encoder", "decoder"):
        scaler.step(opts[name])
        opts[name].zero_grad(set_to_none=True)
    scaler.update()
    return {"sim": similarity.item(), "kl": kl.item() * x[0].numel()}


def _epoch_batches(data: FilmFrames, epoch: int, cfg: AutoencoderConfig, per_epoch: int):
    """Exactly `per_epoch` batches: a stream shorter than its header promised goes round again."""
    got, rounds = 0, 0
    while got < per_epoch:
        for batch in data.epoch(epoch + rounds * 1_000_003, cfg.seed, cfg.batch):
            yield batch
            got += 1
            if got == per_epoch:
                return
        rounds += 1


def _spread_frames(data: FilmFrames, videos: list[Path], cfg: AutoencoderConfig, n: int) -> np.ndarray:
    if data.held:
        idx = np.linspace(0, len(data.frames) - 1, n).round().astype(int)
        return data.frames[idx]
    info = probe(videos[0])
    picks = []
    for t in np.linspace(0.05, 0.95, n) * info.duration:
        for decoded in decode_frames(videos[0], start=float(t)):
            picks.append(cover(decoded, cfg.width, cfg.height))
            break
    return np.stack(picks)


def _reconstruct(model: VAEGAN, frames: np.ndarray, prec: Precision) -> np.ndarray:
    model.eval()
    with torch.no_grad(), prec.autocast():
        out = model.reconstruct(to_tensor(frames, prec.device))
    return to_uint8(out)


def load_model(model_dir: Path, device: str | None = None) -> tuple[VAEGAN, AutoencoderConfig, Precision]:
    ckpt = load_checkpoint(Path(model_dir), KIND)
    cfg = AutoencoderConfig(**ckpt["config"])
    prec = choose_precision(device)
    model = build(cfg)
    model.load_state_dict(ckpt["model"])
    return model.to(prec.device).eval(), cfg, prec


def render(
    video: Path,
    model_dir: Path,
    out: Path,
    side_by_side: bool = False,
    upscale: bool = True,
    batch: int = 32,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Reconstruct every frame of `video` through its latent mean; source fps and audio kept."""
    model, cfg, prec = load_model(model_dir, device)
    info = probe(Path(video))
    w, h = _output_size(info.display_size, (cfg.width, cfg.height), upscale)
    out_w = 2 * w if side_by_side else w

    source, rate, total = output_frames(video, info)  # a phone's variable rate kept on its sound
    with VideoWriter(out, out_w, h, rate, audio_from=video) as writer, TrainProgress(
        total, 0, "rendering", enabled=progress
    ) as bar:
        pending: list[tuple[np.ndarray, np.ndarray | None]] = []

        def flush() -> None:
            x = np.stack([p[0] for p in pending])
            with torch.no_grad(), prec.autocast():
                y = to_uint8(model.reconstruct(to_tensor(x, prec.device)))
            for (_, src), frame in zip(pending, y):
                frame = resize(frame, w, h)
                writer.write(np.concatenate([src, frame], axis=1) if side_by_side else frame)
            bar.update(writer.frames, len(pending), {})
            pending.clear()

        for decoded in source:  # a held frame goes through the model again: a variable rate's few repeats
            src = cover(decoded, w, h) if side_by_side else None
            pending.append((cover(decoded, cfg.width, cfg.height), src))
            if len(pending) == batch:
                flush()
        if pending:
            flush()
    return Path(out)


def _output_size(source: tuple[int, int], model: tuple[int, int], upscale: bool) -> tuple[int, int]:
    """The source's size (even sides, aspect of the model's crop) or the model's own size."""
    if not upscale:
        return model
    sw, sh = source
    mw, mh = model
    # The model sees a centre crop of the model's aspect: upscale that crop to the source's width.
    w = sw - sw % 2
    h = round(w * mh / mw)
    if h > sh:
        h = sh - sh % 2
        w = round(h * mw / mh)
    return w - w % 2, h - h % 2


def walk(
    frames: list[str],
    model_dir: Path,
    out: Path,
    seconds: float = 3.0,
    fps: float = 24.0,
    upscale: int = 1,
    device: str | None = None,
) -> Path:
    """A video travelling through latent space from each given frame to the next.

    Frames are VIDEO@SECONDS or image files. The path between two latent means is a
    spherical interpolation: in a high-dimensional Gaussian a straight line passes through
    the low-density middle, where the decoder gives grey mush; the great circle keeps the
    norm, so every point on the way looks like a frame of the film.
    """
    if len(frames) < 2:
        raise RereelError("walk needs at least two frames (VIDEO@SECONDS or image files)")
    model, cfg, prec = load_model(model_dir, device)
    images = np.stack([frame_at(f, cfg.width, cfg.height) for f in frames])
    with torch.no_grad(), prec.autocast():
        mu, _ = model.encoder(to_tensor(images, prec.device))
    mu = mu.float()
    n = max(2, round(seconds * fps))

    w, h = cfg.width * upscale, cfg.height * upscale
    with VideoWriter(out, w, h, fps) as writer:
        for a, b in zip(mu[:-1], mu[1:]):
            # Each leg stops one step short of b: b opens the next leg (or is the final frame),
            # so a joint is shown once, not twice.
            t = torch.linspace(0, 1, n + 1, device=mu.device)[:-1, None]
            t = 0.5 - 0.5 * torch.cos(math.pi * t)  # ease in and out: linger on the given frames
            path = slerp(a, b, t)
            for i in range(0, n, 32):
                with torch.no_grad(), prec.autocast():
                    y = to_uint8(model.decoder(path[i : i + 32]))
                for frame in y:
                    writer.write(resize(frame, w, h))
        with torch.no_grad(), prec.autocast():
            writer.write(resize(to_uint8(model.decoder(mu[-1:]))[0], w, h))
    return Path(out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors a and b at fractions t (N, 1)."""
    na, nb = a.norm(), b.norm()
    omega = torch.arccos(torch.clamp((a / na) @ (b / nb), -1.0, 1.0))
    if omega.abs() < 1e-4:
        return a + (b - a) * t
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / so
    return direction * (na + (nb - na) * t)  # the norm moves linearly between the two
