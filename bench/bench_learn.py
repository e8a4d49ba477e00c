"""Throughput of the learn models: training and rendering, on the CPU and, when present, CUDA.

    python bench/bench_learn.py [--seconds S] [--device cpu|cuda|both] [--only autoencoder|see] [--eval FILE]

Prints:
  the eval figures of the 10-minute laptop run, read from its `eval --json` output (--eval);
  autoencoder presets: laptop (64x36, at its 1 thread and at 2), broad at 128x72 and at its
      256x144: training images/s (train_step on a batch) and render frames/s (model alone, and
      the whole `render` of a real clip: decode + model + upscale + H.264 encode + audio);
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


def bench_autoencoder(device: str, cfg: ae.AutoencoderConfig, seconds: float, tmp: Path) -> dict:
    """Training images/s of one train_step at the config's batch, and render speeds."""
    prec = choose_precision(device)
    size, batch = (cfg.width, cfg.height), cfg.batch
    threads = torch.get_num_threads()
    if cfg.threads and prec.device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    try:
        return _bench_autoencoder(prec, device, cfg, size, batch, seconds, tmp)
    finally:
        torch.set_num_threads(threads)


def _bench_autoencoder(prec, device, cfg, size, batch, seconds, tmp) -> dict:
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
        model_dir = tmp / f"ae-{cfg.preset}-{size[0]}-{cfg.threads}-{device}"
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


def _print_eval(path: Path) -> None:
    """The measured quality of the documented 10-minute laptop run, read from its eval output."""
    import json

    if not path.exists():
        print(f"eval of the 10-minute laptop run: {path} not found (docs/learn.md, 'The bar', makes it)")
        return
    s = json.loads(path.read_text())
    print(f"eval of the 10-minute laptop run ({path}): psnr {s['psnr']:.2f} dB (mean frame {s['baseline_psnr']:.2f}), "
          f"ssim {s['ssim']:.3f}, shot_top1 {s['shot_top1']:.3f} (chance {s['chance_shot']:.3f}), "
          f"time_top1 {s['time_top1']:.3f}; {s['frames']} frames, {s['shots']} shots, {s['size']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "both"])
    ap.add_argument("--seconds", type=float, default=4.0, help="time each measurement at least this long")
    ap.add_argument("--only", choices=["autoencoder", "see"], help="time one model's figures only")
    ap.add_argument("--eval", type=Path, default=ROOT / "out" / "learn" / "laptop-10min" / "eval.json",
                    help="`rereel autoencoder eval --json` of the 10-minute laptop run (docs/learn.md, 'The bar')")
    args = ap.parse_args()
    _print_eval(args.eval)
    devices = ["cpu"]
    if args.device in ("auto", "both", "cuda") and torch.cuda.is_available():
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for device in devices:
            gpu = device == "cuda"
            runs = [("laptop", {}), ("laptop", {"threads": 2}), ("broad", {"width": 128, "height": 72}), ("broad", {})]
            runs = [] if args.only == "see" else runs
            for preset, change in runs:
                cfg = ae.preset_config(preset, **change)
                if preset == "broad":
                    cfg.batch = 64 if gpu else 16  # as before presets: comparable with earlier figures
                r = bench_autoencoder(device, cfg, args.seconds, tmp)
                threads = f", {cfg.threads or torch.get_num_threads()} threads" if not gpu else ""
                print(f"autoencoder --preset {preset} {cfg.width}x{cfg.height} [{r['device']}{threads}]: train "
                      f"{r['train_img_s']:.1f} img/s (batch {r['batch']}), render {r['model_fps']:.1f} fps model-only"
                      + (f", {r['render_fps']:.1f} fps end-to-end" if "render_fps" in r else ""), flush=True)
            for size in () if args.only == "autoencoder" else (128, 256):
                r = bench_see(device, size, 4, args.seconds, tmp)
                print(f"see {size}x{size} [{r['device']}]: train {r['train_steps_s']:.2f} steps/s (batch {r['batch']}), "
                      f"per-frame {r['seer_fps_square']:.1f} fps at {size}x{size}"
                      + (f", render {r['render_fps']:.1f} fps end-to-end (480x360 source)" if "render_fps" in r else ""), flush=True)
                if size == 256:
                    print(f"live per-frame path (recipe + generator, 256x256, batch 1) [{r['device']}]: {r['seer_fps_square']:.1f} fps", flush=True)


if __name__ == "__main__":
    main()
