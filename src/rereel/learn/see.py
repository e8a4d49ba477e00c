"""Learning to see (after Memo Akten's "Gloomy Sunday"): a pix2pix that can only see its corpus.

Trained on target images alone, each input made from its target on the fly; shown
anything else, the generator paints what it knows over the shapes it is given.

Live, on a CPU, the full U-Net is too slow for a webcam (a 640x360 frame is a 512x256 pass of
about 12 G multiply-adds). So training ends by distilling a live model: the same U-Net at a
quarter of the width (about 1/16 of the work), taught to give the full generator's output.
The CPU runs both through ONNX Runtime (docs/learn.md, "Live speed").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from rereel.errors import RereelError
from rereel.learn.frames import sample_corpus
from rereel.learn.pix2pix import PatchDiscriminator, UNetGenerator, depth_for, init_weights
from rereel.learn.toolkit import (
    Precision,
    export_onnx,
    onnx_session,
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
from rereel.media import VideoWriter, probe
from rereel.media.decode import output_frames
from rereel.outputs import write_file

KIND = "see"
RECIPES = ("degrade", "edges")
SCALE_RANGE = (1.0, 1.3)  # Akten: random scale to 100-130%, then a random crop
DOWNSCALE = 8  # the "heavy" downscale: a 256 image is squeezed to 32x32 before the cubic upscale
LIVE = "live.pt"  # the distilled live generator, beside checkpoint.pt
FULL_ONNX, LIVE_ONNX = "generator.onnx", "live.onnx"  # their ONNX exports, made when first needed
BANK = 256  # distillation pairs whose full-generator outputs are computed once


@dataclass
class SeeConfig:
    size: int = 256
    recipe: str = "degrade"
    steps: int = 10000
    batch: int = 4
    base: int = 64  # generator and discriminator width, pix2pix's ngf/ndf
    lr: float = 2e-4
    l1_weight: float = 100.0  # pix2pix's lambda
    sample_every: int = 500
    checkpoint_every: int = 1000
    max_frames: int = 2000  # corpus frames held in memory at 1.3x the model size
    seed: int = 0
    live_steps: int | None = None  # distillation steps for the live model; None: a fifth of `steps`
    corpus: list[str] = field(default_factory=list)
    kind: str = KIND


# --- the input recipes ---------------------------------------------------------------------


def degrade(target: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Akten's recipe: grayscale, area downscale, cubic upscale, then brightness and contrast.

    With no `rng` the random brightness and contrast are left out: what render and live use.
    """
    h, w = target.shape[:2]
    gray = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (max(1, w // DOWNSCALE), max(1, h // DOWNSCALE)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    if rng is not None:
        brightness, contrast = rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15)
        out = ((out - out.mean()) * (1 + contrast) + out.mean()) * (1 + brightness)
    return np.repeat(np.clip(out, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def edges(target: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """The 2017 webcam-pix2pix recipe: Canny edges (white on black) of the blurred image."""
    gray = cv2.GaussianBlur(cv2.cvtColor(target, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    e = cv2.Canny(gray, 50, 150)
    return np.repeat(e[:, :, None], 3, axis=2)


def recipe_fn(name: str):
    if name not in RECIPES:
        raise RereelError(f"recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return degrade if name == "degrade" else edges


def random_pair(image: np.ndarray, size: int, recipe: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) from one corpus image: random scale and crop, a flip, then the recipe."""
    h, w = image.shape[:2]
    side = round(size * rng.uniform(*SCALE_RANGE))
    scale = side / min(h, w)
    scaled = resize(image, max(size, round(w * scale)), max(size, round(h * scale)))
    y = rng.integers(scaled.shape[0] - size + 1)
    x = rng.integers(scaled.shape[1] - size + 1)
    target = scaled[y : y + size, x : x + size]
    if rng.random() < 0.5:
        target = target[:, ::-1]  # left-right only: upside-down water or sky is another corpus
    target = np.ascontiguousarray(target)
    return recipe_fn(recipe)(target, rng), target


def centre_pair(image: np.ndarray, size: int, recipe: str) -> tuple[np.ndarray, np.ndarray]:
    """The deterministic pair: short side to `size`, centre crop, recipe without its random parts."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    scaled = resize(image, max(size, round(w * scale)), max(size, round(h * scale)))
    y, x = (scaled.shape[0] - size) // 2, (scaled.shape[1] - size) // 2
    target = np.ascontiguousarray(scaled[y : y + size, x : x + size])
    return recipe_fn(recipe)(target), target


# --- training ------------------------------------------------------------------------------


def train(
    corpus: list[Path],
    model_dir: Path,
    cfg: SeeConfig,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    frames: list[np.ndarray] | None = None,
    given: Iterable[str] = (),
) -> dict:
    """Train (or resume) a pix2pix on the corpus. `frames` skips sampling (tests, benchmarks).
    `given`: the fields of `cfg` a user set (options); on a resume, one that differs from the
    model's is refused (the model's own are used: size, recipe, batch, corpus size)."""
    model_dir = Path(model_dir)
    if resume:
        ckpt = load_checkpoint(model_dir, KIND)
        saved = SeeConfig(**ckpt["config"])
        same_settings(model_dir, {f"--{k.replace('_', '-')}": (getattr(cfg, k), getattr(saved, k)) for k in given})
        saved.steps, saved.sample_every, saved.checkpoint_every = cfg.steps, cfg.sample_every, cfg.checkpoint_every
        cfg = saved
        same_inputs(corpus, cfg.corpus, model_dir, "corpus")
        if cfg.steps < ckpt["step"]:  # it trained nothing, and wrote the lower count as the model's own
            raise RereelError(f"{model_dir}: the model has trained {ckpt['step']} steps already, and --steps counts "
                              f"them all (got {cfg.steps}); give more to go on")
    else:
        if (model_dir / "checkpoint.pt").exists():
            raise RereelError(f"{model_dir}: already holds a model; pass --resume to continue it, or choose another folder")
        recipe_fn(cfg.recipe)
        depth_for(cfg.size)
        cfg.corpus = [str(Path(p).absolute()) for p in corpus]  # a resume may run from another folder
    if frames is None:
        frames = sample_corpus([Path(p) for p in cfg.corpus], round(cfg.size * SCALE_RANGE[1]), cfg.max_frames)
    prec = choose_precision(device)
    torch.manual_seed(cfg.seed)
    gen, dis = UNetGenerator(cfg.size, cfg.base), PatchDiscriminator(cfg.base)
    init_weights(gen), init_weights(dis)
    gen, dis = gen.to(prec.device), dis.to(prec.device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(dis.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    scaler = prec.grad_scaler()
    rng = np.random.default_rng(cfg.seed)
    step = 0
    if resume:
        gen.load_state_dict(ckpt["generator"]), dis.load_state_dict(ckpt["discriminator"])
        opt_g.load_state_dict(ckpt["opt_g"]), opt_d.load_state_dict(ckpt["opt_d"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step = ckpt["step"]
        set_rng_state(ckpt["rng"], rng)
    sheet_pairs = [centre_pair(frames[i], cfg.size, cfg.recipe) for i in np.linspace(0, len(frames) - 1, 6).round().astype(int)]

    def checkpoint() -> None:
        save_checkpoint(model_dir, {
            "generator": gen.state_dict(), "discriminator": dis.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "step": step, "rng": rng_state(rng),
        }, asdict(cfg))

    losses: dict[str, float] = {}
    with TrainProgress(cfg.steps, step, "learning to see", enabled=progress) as bar:
        bar.log(f"{len(frames)} corpus images, recipe {cfg.recipe}, {cfg.size}x{cfg.size} on {prec.name}")
        gen.train(), dis.train()
        while step < cfg.steps:
            pairs = [random_pair(frames[i], cfg.size, cfg.recipe, rng) for i in rng.integers(len(frames), size=cfg.batch)]
            a = to_tensor([p[0] for p in pairs], prec.device)  # the made input
            b = to_tensor([p[1] for p in pairs], prec.device)  # the corpus image it came from
            losses = train_step(gen, dis, opt_g, opt_d, scaler, prec, a, b, cfg)
            step += 1
            bar.update(step, cfg.batch, losses)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint()
            if step == cfg.steps or (cfg.sample_every and step % cfg.sample_every == 0):
                write_sheet(model_dir / "samples" / f"step-{step:06d}.png", gen, sheet_pairs, prec)
                gen.train()
    checkpoint()
    live = distill(model_dir, gen.eval(), frames, cfg, step, prec, progress)
    return {"step": step, "losses": losses, "frames": len(frames), "live_l1": live}


def train_step(gen, dis, opt_g, opt_d, scaler, prec: Precision, a: torch.Tensor, b: torch.Tensor, cfg: SeeConfig) -> dict:
    """One pix2pix step on made inputs `a` and their corpus images `b`; returns the losses."""
    with prec.autocast():
        fake = gen(a)
        # Discriminator: real pairs against the generator's, which it must not train.
        d_real, d_fake = dis(a, b).float(), dis(a, fake.detach()).float()
        d_loss = 0.5 * (gan_loss(d_real, True) + gan_loss(d_fake, False))  # halved, as pix2pix does
    opt_d.zero_grad(set_to_none=True)
    scaler.scale(d_loss).backward()
    scaler.step(opt_d)
    with prec.autocast():
        g_gan = gan_loss(dis(a, fake).float(), True)
        l1 = (fake.float() - b).abs().mean()
        g_loss = g_gan + cfg.l1_weight * l1
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(g_loss).backward()
    scaler.step(opt_g)
    scaler.update()
    return {"d": d_loss.item(), "g_gan": g_gan.item(), "l1": l1.item()}


def write_sheet(path: Path, gen: UNetGenerator, pairs: list[tuple[np.ndarray, np.ndarray]], prec: Precision) -> Path:
    """Rows: input, output, target."""
    inputs = np.stack([p[0] for p in pairs])
    gen.eval()
    with torch.no_grad(), prec.autocast():
        outputs = to_uint8(gen(to_tensor(inputs, prec.device)))
    return write_sample_sheet(path, [inputs, outputs, np.stack([p[1] for p in pairs])])


# --- the live model ----------------------------------------------------------------------


def live_width(cfg: SeeConfig) -> int:
    """The live generator's base width: a quarter of the full one's (16 for the default 64)."""
    return max(4, cfg.base // 4)


def distill(model_dir: Path, gen: UNetGenerator, frames: list[np.ndarray], cfg: SeeConfig, step: int,
            prec: Precision, progress: bool = True) -> float | None:
    """Teach the live generator the full one's output; save it as live.pt. Returns its last L1.

    The full generator's outputs for a bank of random training pairs are computed once (the
    costly part on a CPU, so through ONNX Runtime there), then the small generator learns them
    by L1, each pair left-right flipped at random. Skipped when live.pt already follows this step.
    """
    model_dir = Path(model_dir)
    if _load_live(model_dir, cfg, step, "cpu") is not None:
        return None
    steps = cfg.live_steps if cfg.live_steps is not None else max(1, cfg.steps // 5)
    rng = np.random.default_rng(cfg.seed + 1)
    inputs = np.stack([random_pair(frames[i], cfg.size, cfg.recipe, rng)[0]
                       for i in rng.integers(len(frames), size=min(BANK, steps * cfg.batch))])
    teacher = _runner(gen, model_dir / FULL_ONNX, model_dir / "checkpoint.pt", prec)
    with TrainProgress(steps, 0, "live model", enabled=progress) as bar:
        bar.log(f"distilling the live model (width {live_width(cfg)}) from {len(inputs)} full-model outputs")
        targets = torch.cat([teacher(to_tensor(inputs[i : i + 8], prec.device)) for i in range(0, len(inputs), 8)])
        torch.manual_seed(cfg.seed + 1)
        student = UNetGenerator(cfg.size, live_width(cfg), dropout=0)
        init_weights(student)
        student = student.to(prec.device).train()
        opt = torch.optim.Adam(student.parameters(), lr=1e-3)
        l1 = torch.zeros(())
        for i in range(steps):
            pick = rng.integers(len(inputs), size=cfg.batch)
            a, b = to_tensor(inputs[pick], prec.device), targets[pick].to(prec.device)
            if rng.random() < 0.5:
                a, b = a.flip(3), b.flip(3)
            with prec.autocast():
                l1 = (student(a).float() - b).abs().mean()
            opt.zero_grad(set_to_none=True)
            l1.backward()
            opt.step()
            bar.update(i + 1, cfg.batch, {"l1": l1.item()})
    path = model_dir / LIVE
    write_file(path, lambda tmp: torch.save({"generator": student.cpu().state_dict(), "base": live_width(cfg), "step": step}, tmp))
    return float(l1.item())


def _load_live(model_dir: Path, cfg: SeeConfig, step: int, device) -> UNetGenerator | None:
    """The live generator if live.pt exists and was distilled from this step of the model, else None."""
    path = model_dir / LIVE
    if not path.exists():
        return None
    try:
        live = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None  # a foreign or broken file: the full model still sees
    if live.get("step") != step:
        return None  # the model trained on since: its live copy no longer says what it says
    gen = UNetGenerator(cfg.size, live["base"], dropout=0)
    gen.load_state_dict(live["generator"])
    return gen.to(device).eval()


def _runner(gen: UNetGenerator, onnx: Path, source: Path, prec: Precision):
    """A (N, 3, H, W) -> (N, 3, H, W) float function: ONNX Runtime on the CPU, else the generator itself.

    The ONNX file is exported beside the model the first time, again when `source` is newer;
    where that fails (a read-only folder, a damaged file), the CPU runs PyTorch (slower, the same images).
    """
    if prec.device.type == "cpu":
        try:
            if not onnx.exists() or onnx.stat().st_mtime < source.stat().st_mtime:
                export_onnx(gen, onnx, torch.zeros(1, 3, gen.multiple, gen.multiple))
            session = onnx_session(onnx)
            return lambda x: torch.from_numpy(session.run(None, {"x": np.ascontiguousarray(x.numpy())})[0])
        except Exception:  # a read-only folder, a damaged file (ONNX Runtime's errors are bare Exceptions)
            pass

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), prec.autocast():
            return gen(x).float()

    return run


# --- seeing: render and live ---------------------------------------------------------------


class Seer:
    """The per-frame path, one call per frame: what render and the live web page use.

    `live=True` runs the distilled live generator when the model has one that follows its
    last step (`self.network` says which runs: "live" or "full"); render runs the full one.
    On the CPU either goes through ONNX Runtime. `self.gen` is the full generator in PyTorch.

    `see(rgb)` scales the frame so its short side is the model's size, applies the recipe
    without its random parts, runs the generator at that size (reflect-padded to what the
    U-Net needs, so any aspect ratio works without stretching), and blends the result with
    the previous output: `smooth` of the old image kept, against pix2pix's frame-to-frame
    flicker.
    """

    def __init__(self, model_dir: Path, smooth: float = 0.5, device: str | None = None, live: bool = True):
        if not 0 <= smooth < 1:
            raise RereelError(f"smooth {smooth}: must be at least 0 and below 1")
        model_dir = Path(model_dir)
        ckpt = load_checkpoint(model_dir, KIND)
        self.cfg = SeeConfig(**ckpt["config"])
        self.prec = choose_precision(device)
        self.gen = UNetGenerator(self.cfg.size, self.cfg.base)
        self.gen.load_state_dict(ckpt["generator"])
        self.gen = self.gen.to(self.prec.device).eval()  # eval: dropout off, the same frame gives the same image
        small = _load_live(model_dir, self.cfg, ckpt["step"], self.prec.device) if live else None
        self.network = "live" if small is not None else "full"
        if small is not None:
            self._run = _runner(small, model_dir / LIVE_ONNX, model_dir / LIVE, self.prec)
        else:
            self._run = _runner(self.gen, model_dir / FULL_ONNX, model_dir / "checkpoint.pt", self.prec)
        self.recipe = recipe_fn(self.cfg.recipe)
        self.smooth = smooth
        self.previous: torch.Tensor | None = None

    def reset(self) -> None:
        self.previous = None  # a cut, or a new video: do not blend across it

    @torch.no_grad()
    def see(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = self.cfg.size / min(h, w)
        sw, sh = max(self.cfg.size, round(w * scale)), max(self.cfg.size, round(h * scale))
        # Around the network, NumPy rather than torch: each small torch op wakes torch's thread
        # pool, and on two shared cores its threads wait for each other at every op (about as
        # long as the live network itself, measured under load; bench/bench_see.py).
        x = self.recipe(resize(rgb, sw, sh))
        m = self.gen.multiple
        pad_w, pad_h = -sw % m, -sh % m
        if pad_w or pad_h:
            x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")  # torch's "reflect" too
        x = x.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(127.5) - np.float32(1)
        y = self._run(torch.from_numpy(x).to(self.prec.device))[0, :, :sh, :sw].float().cpu().numpy()
        if self.previous is not None and self.previous.shape == y.shape and self.smooth:
            y = self.smooth * self.previous + (1 - self.smooth) * y
        self.previous = y
        return np.ascontiguousarray(np.rint((np.clip(y, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0))


def render(
    video: Path,
    model_dir: Path,
    out: Path,
    side_by_side: bool = False,
    smooth: float = 0.5,
    upscale: bool = True,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Every frame of `video` through the Seer's full generator, at the source's fps with its audio."""
    seer = Seer(model_dir, smooth, device, live=False)
    info = probe(Path(video))
    sw, sh = info.display_size
    if upscale:
        w, h = sw - sw % 2, sh - sh % 2
    else:
        scale = seer.cfg.size / min(sw, sh)
        w, h = max(seer.cfg.size, round(sw * scale)), max(seer.cfg.size, round(sh * scale))
        w, h = w - w % 2, h - h % 2
    source, rate, total = output_frames(video, info)  # a phone's variable rate kept on its sound
    with VideoWriter(out, 2 * w if side_by_side else w, h, rate, audio_from=video) as writer, TrainProgress(
        total, 0, "rendering", enabled=progress
    ) as bar:
        last = shown = None
        for decoded in source:
            if decoded is not last:  # a frame held (variable rate) goes through the model once
                src = decoded.rgb(w, h)
                frame = resize(seer.see(src), w, h)
                shown, last = np.concatenate([src, frame], axis=1) if side_by_side else frame, decoded
            writer.write(shown)
            bar.update(writer.frames, 1, {})
    return Path(out)
