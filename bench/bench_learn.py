"""Throughput of the learn models: training and rendering, on the CPU and, when present, CUDA.

    python bench/bench_learn.py [--quick] [--device cpu|cuda|both]

Prints:
  autoencoder (VAE-GAN, paper size: 64 base channels, latent 200) at 128x72 and 256x144:
      training images/s (train_step on a batch) and render frames/s (model alone, and the
      whole `render` of a real clip: decode + model + upscale + H.264 encode + audio);
  see (pix2pix, 64 base channels) at 128 and 256: training steps/s (batch 4, input recipe
      included) and render frames/s (model alone, and the whole `render`);
  live: the Seer's per-frame path (recipe + generator, batch 1) at 256x256, frames/s.

Training speed does not depend on what the frames show, so training uses random frames;
the end-to-end renders use archive/cc0_mdn_stream_of_water.mp4 from the sample footage
($REREEL_MEDIA or ../shared/media) and are skipped if it is missing. Weights are
untrained: speed does not depend on them either. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rereel.learn import autoencoder as ae  # noqa: E402
from rereel.learn import see  # noqa: E402
from rereel.learn.pix2pix import PatchDiscriminator, UNetGenerator, init_weights  # noqa: E402
from rereel.learn.toolkit import choose_precision, rng_state, save_checkpoint, to_tensor  # noqa: E402

MEDIA = Path(os.environ.get("REREEL_MEDIA", ROOT.parent / "shared" / "media"))
CLIP = MEDIA / "archive" / "cc0_mdn_stream_of_water.mp4"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, seconds: float, warmup: int = 2, min_iters: int = 3) -> float:
    """Seconds per call of fn, after warm-up, over at least `min_iters` calls and ~`seconds`."""
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n


def bench_autoencoder(device: str, size: tuple[int, int], batch: int, seconds: float, tmp: Path) -> dict:
    prec = choose_precision(device)
    cfg = ae.AutoencoderConfig(width=size[0], height=size[1], batch=batch)
    torch.manual_seed(0)
    model = ae.build(cfg).to(prec.device).train()
    opts = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) for n, m in
            (("encoder", model.encoder), ("decoder", model.decoder), ("discriminator", model.discriminator))}
    scaler = prec.grad_scaler()
    frames = np.random.default_rng(0).integers(0, 256, (batch, size[1], size[0], 3), dtype=np.uint8)
    step = timed(lambda: ae.train_step(model, opts, scaler, prec, to_tensor(frames, prec.device), cfg), prec.device, seconds)
    model.eval()
    render_batch = 32

    def infer():
        with torch.no_grad(), prec.autocast():
            ae.to_uint8(model.reconstruct(to_tensor(frames[:1].repeat(render_batch, 0), prec.device)))

    infer_s = timed(infer, prec.device, seconds)
    out = {"device": prec.name, "train_img_s": batch / step, "batch": batch, "model_fps": render_batch / infer_s}
    if CLIP.exists():
        model_dir = tmp / f"ae-{size[0]}-{device}"
        save_checkpoint(model_dir, {"model": model.state_dict(), "step": 0, "rng": rng_state()}, asdict(cfg))
        out["render_fps"] = _render_fps(lambda o: ae.render(CLIP, model_dir, o, device=device, progress=False), tmp)
    return out


def bench_see(device: str, size: int, batch: int, seconds: float, tmp: Path) -> dict:
    prec = choose_precision(device)
    cfg = see.SeeConfig(size=size, batch=batch)
    torch.manual_seed(0)
    gen, dis = UNetGenerator(size), PatchDiscriminator()
    init_weights(gen), init_weights(dis)
    gen, dis = gen.to(prec.device).train(), dis.to(prec.device).train()
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(dis.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    scaler = prec.grad_scaler()
    rng = np.random.default_rng(0)
    corpus = [rng.integers(0, 256, (round(size * 1.3), round(size * 1.3 * 16 / 9), 3), dtype=np.uint8) for _ in range(8)]

    def step():
        pairs = [see.random_pair(corpus[i], size, "degrade", rng) for i in rng.integers(len(corpus), size=batch)]
        a = to_tensor([p[0] for p in pairs], prec.device)
        b = to_tensor([p[1] for p in pairs], prec.device)
        see.train_step(gen, dis, opt_g, opt_d, scaler, prec, a, b, cfg)

    step_s = timed(step, prec.device, seconds)
    model_dir = tmp / f"see-{size}-{device}"
    save_checkpoint(model_dir, {"generator": gen.state_dict(), "step": 0, "rng": rng_state()}, asdict(cfg))
    seer = see.Seer(model_dir, smooth=0.5, device=device)
    frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = {"device": prec.name, "train_steps_s": 1 / step_s, "batch": batch, "seer_fps_square": 1 / timed(lambda: seer.see(frame), prec.device, seconds)}
    if CLIP.exists():
        out["render_fps"] = _render_fps(lambda o: see.render(CLIP, model_dir, o, device=device, progress=False), tmp)
    return out


def _render_fps(render, tmp: Path) -> float:
    from rereel.media import probe

    out = tmp / "render.mp4"
    t0 = time.perf_counter()
    render(out)
    return probe(out).frames / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "both"])
    ap.add_argument("--seconds", type=float, default=4.0, help="time each measurement at least this long")
    args = ap.parse_args()
    devices = ["cpu"]
    if args.device in ("auto", "both", "cuda") and torch.cuda.is_available():
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for device in devices:
            gpu = device == "cuda"
            for size in ((128, 72), (256, 144)):
                r = bench_autoencoder(device, size, 64 if gpu else 16, args.seconds, tmp)
                print(f"autoencoder {size[0]}x{size[1]} [{r['device']}]: train {r['train_img_s']:.1f} img/s (batch {r['batch']}), "
                      f"render {r['model_fps']:.1f} fps model-only"
                      + (f", {r['render_fps']:.1f} fps end-to-end" if "render_fps" in r else ""), flush=True)
            for size in (128, 256):
                r = bench_see(device, size, 4, args.seconds, tmp)
                print(f"see {size}x{size} [{r['device']}]: train {r['train_steps_s']:.2f} steps/s (batch {r['batch']}), "
                      f"per-frame {r['seer_fps_square']:.1f} fps at {size}x{size}"
                      + (f", render {r['render_fps']:.1f} fps end-to-end (480x360 source)" if "render_fps" in r else ""), flush=True)
                if size == 256:
                    print(f"live per-frame path (recipe + generator, 256x256, batch 1) [{r['device']}]: {r['seer_fps_square']:.1f} fps", flush=True)


if __name__ == "__main__":
    main()
