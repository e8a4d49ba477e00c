"""Learning to see, live: `Seer.see` on 640x360 frames, the full model against the live path.

    python bench/bench_see.py [--model MODEL_DIR] [--rounds 3] [--frames 8] [--sheet out/bench_see_sheet.png]

MODEL_DIR is a model trained at `rereel see train`'s defaults (size 256, base 64); its live
model (live.pt) is made at the end of training. Speed does not depend on the weights, quality
does: the bench prints the model's training step beside the figures. Without --model (as
`make bench` runs it: training takes hours on a CPU) it times untrained generators of the
default sizes, and prints no quality figures.

Each way of seeing is one `Seer.see` on a 640x360 frame (scale to the model's size on the
short side, recipe, reflect pad to 512x256, network, crop, blend, uint8), with torch at the
threads the server runs it with (torch's default, as `rereel serve` leaves it) and ONNX
Runtime on all cores with sleeping workers:

  full, PyTorch              the path before issue 14: the U-Net of 64 base channels
  full, PyTorch channels-last
  full, ONNX Runtime         what `see render` runs now on the CPU
  live, PyTorch              the distilled U-Net of 16 base channels
  live, ONNX Runtime         what `Seer` runs now by default (the web page's path)
  live, half input           the live model on a frame of half the size (short side 128,
                             edge-padded to 256x256), output upscaled: half the pixels

The ways take turns, round after round, so load from other work falls on all of them alike;
frames/s is from the median frame time. "CPU ms" is this process's CPU time per frame (all
its threads), which other work inflates less than the wall time (PyTorch's spinning threads
excepted): on two idle cores a way that does not spin runs at between 1000 and 2000 / CPU ms
frames/s. Then the web page's whole per-frame work (JPEG decode, see, JPEG encode: web/live.py's
`_see`) on the live path, in a worker thread as the server runs it. Quality: PSNR and SSIM of each way's output against the full model's PyTorch output,
frame by frame (no blending), on real frames of four clips of the footage; and a sample sheet,
rows: source, input (recipe), full (PyTorch), full (ONNX Runtime), live, live at half input.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rereel.learn import see  # noqa: E402
from rereel.learn.toolkit import load_checkpoint, resize, to_tensor, to_uint8, write_sample_sheet  # noqa: E402
from rereel.media import decode_frames  # noqa: E402

MEDIA = Path(os.environ.get("REREEL_MEDIA", ROOT.parent / "shared" / "media"))
CLIPS = [  # a face (what a webcam shows), water, a street film, a cartoon
    "cc0_mdn_chroma_keying_face_closeup.mp4",
    "cc0_mdn_stream_of_water.mp4",
    "ccby_zwm_tears_of_steel_10s.mp4",
    "pd_steamboat_willie_1928_extract.mp4",
]
W, H = 640, 360


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    import onnxruntime as ort

    return (f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores; torch {torch.__version__} ({torch.get_num_threads()} threads),"
            f" onnxruntime {ort.__version__}; load average {os.getloadavg()[0]:.1f}")


def real_frames(per_clip: int) -> list[np.ndarray]:
    frames = []
    for name in CLIPS:
        clip = [d.rgb(W, H) for d in decode_frames(MEDIA / "archive" / name, end=4.0)]
        frames += [clip[i] for i in np.linspace(0, len(clip) - 1, per_clip).round().astype(int)]
    return frames


def half_input(seer: see.Seer):
    """A see() that feeds the network half the pixels per side and upscales what it gives."""

    def run(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        size = seer.cfg.size
        scale = size / min(h, w)
        sw, sh = max(size, round(w * scale)), max(size, round(h * scale))
        x = to_tensor(seer.recipe(resize(rgb, sw // 2, sh // 2))[None], seer.prec.device)
        hw, hh, m = sw // 2, sh // 2, seer.gen.multiple
        # The depth-8 U-Net needs 256 on both sides: edge padding, as reflect cannot pad 128 to 256.
        x = F.pad(x, (0, -hw % m, 0, -hh % m), mode="replicate")
        y = seer._run(x)[:, :, :hh, :hw]
        return to_uint8(F.interpolate(y, size=(sh, sw), mode="bicubic", align_corners=False))[0]

    return run


def ways(model: Path) -> dict:
    full = see.Seer(model, smooth=0, device="cpu", live=False)
    live = see.Seer(model, smooth=0, device="cpu", live=True)
    if live.network != "live":
        raise SystemExit(f"{model}: has no live model that follows its last step (train or --resume it with this version)")
    torch_full = copy.copy(full)
    torch_full._run = full.gen
    cl = copy.deepcopy(full.gen).to(memory_format=torch.channels_last)
    torch_cl = copy.copy(full)
    torch_cl._run = lambda x: cl(x.contiguous(memory_format=torch.channels_last)).contiguous()
    ckpt = load_checkpoint(model, see.KIND)
    small = see._load_live(model, full.cfg, ckpt["step"], "cpu")
    torch_live = copy.copy(live)
    torch_live._run = small
    return {
        "full, PyTorch": torch_full.see,
        "full, PyTorch channels-last": torch_cl.see,
        "full, ONNX Runtime": full.see,
        "live, PyTorch": torch_live.see,
        "live, ONNX Runtime": live.see,
        "live, half input": half_input(live),
    }


def psnr_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10)), structural_similarity(a, b, channel_axis=2, data_range=255)


def web_path(model: Path, frames: list[np.ndarray], seconds: float) -> None:
    """web/live.py's per-frame work on the live path, in a worker thread as `asyncio.to_thread` runs it."""
    import io

    from PIL import Image

    from rereel.web.live import _see

    seer = see.Seer(model, smooth=0.5, device="cpu")
    jpegs = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=80)
        jpegs.append(buf.getvalue())
    ms: list[float] = []

    def work():
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < seconds:
            t = time.perf_counter()
            _see(seer, jpegs[i % len(jpegs)])
            ms.append((time.perf_counter() - t) * 1000)
            i += 1

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    print(f"web page's frame (JPEG 640x360 in, see, JPEG out; worker thread), {seer.network} model:"
          f" p50 {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, {1000 / np.median(ms):.1f} frames/s ({len(ms)} frames)")


def untrained(folder: Path) -> Path:
    """A model folder of the default sizes with untrained weights and a live model: speed only."""
    from dataclasses import asdict

    from rereel.learn.pix2pix import UNetGenerator, init_weights
    from rereel.learn.toolkit import save_checkpoint

    cfg = see.SeeConfig()
    torch.manual_seed(0)
    full, small = UNetGenerator(cfg.size, cfg.base), UNetGenerator(cfg.size, see.live_width(cfg), dropout=0)
    init_weights(full), init_weights(small)
    save_checkpoint(folder, {"generator": full.state_dict(), "step": 0}, asdict(cfg))
    torch.save({"generator": small.state_dict(), "base": see.live_width(cfg), "step": 0}, folder / see.LIVE)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, help="a trained model; without it, untrained weights (speed only)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8, help="frames timed per way and round")
    ap.add_argument("--sheet", type=Path, default=ROOT / "out" / "bench_see_sheet.png")
    args = ap.parse_args()
    print(machine())
    if args.model is None:
        import tempfile

        args.model = untrained(Path(tempfile.mkdtemp(prefix="bench-see-")))
        print("no --model: untrained generators of see train's default sizes; speed only, no quality figures")
    cfg = see.SeeConfig(**load_checkpoint(args.model, see.KIND)["config"])
    step = load_checkpoint(args.model, see.KIND)["step"]
    print(f"model: {args.model}, size {cfg.size}, base {cfg.base}, recipe {cfg.recipe}, trained {step} steps;"
          f" live model width {see.live_width(cfg)}")
    frames = real_frames(3)
    runs = ways(args.model)
    for fn in runs.values():  # warm-up: first runs allocate, ONNX Runtime plans
        fn(frames[0]), fn(frames[1])
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.rounds):
        for name, fn in runs.items():
            for i in range(args.frames):
                t, c = time.perf_counter(), time.process_time()
                fn(frames[(r * args.frames + i) % len(frames)])
                times[name].append((time.perf_counter() - t) * 1000)
                cpu[name].append((time.process_time() - c) * 1000)
    outs = {name: [fn(f) for f in frames] for name, fn in runs.items()}
    ref = outs["full, PyTorch"]
    base_fps = 1000 / np.median(times["full, PyTorch"])
    print(f"\nSeer.see on {W}x{H} frames ({args.rounds} rounds x {args.frames} frames a way, taking turns)")
    print(f"{'':30s} {'p50 ms':>8s} {'p95 ms':>8s} {'frames/s':>9s} {'x full':>7s} {'CPU ms':>7s} {'PSNR dB':>8s} {'SSIM':>6s}  (vs full, PyTorch)")
    for name in runs:
        fps = 1000 / np.median(times[name])
        q = np.array([psnr_ssim(a, b) for a, b in zip(outs[name], ref)]).mean(0) if step else None
        quality = f" {q[0]:8.1f} {q[1]:6.3f}" if step else f" {'-':>8s} {'-':>6s}"
        print(f"{name:30s} {np.median(times[name]):8.1f} {np.percentile(times[name], 95):8.1f} {fps:9.1f} {fps / base_fps:6.1f}x"
              f" {np.median(cpu[name]):7.1f}" + quality)
    live_fps = 1000 / np.median(times["live, ONNX Runtime"])
    live_cpu = np.median(cpu["live, ONNX Runtime"])
    print(f"target >= 20 frames/s (aim 30) for the live path: {live_fps:.1f} here, {'met' if live_fps >= 20 else 'MISSED'};"
          f" its {live_cpu:.1f} CPU ms a frame make {1000 / live_cpu:.0f}-{2000 / live_cpu:.0f} frames/s on two idle cores")
    web_path(args.model, frames, 10.0)
    if not step:
        return
    pick = list(range(0, len(frames), 3))
    seer = see.Seer(args.model, smooth=0, device="cpu")
    src = [resize(frames[i], *ref[i].shape[1::-1]) for i in pick]
    rows = [np.stack(src), np.stack([seer.recipe(s) for s in src])] + [np.stack([outs[n][i] for i in pick]) for n in runs
                                                                         if n not in ("full, PyTorch channels-last", "live, PyTorch")]
    write_sample_sheet(args.sheet, rows)
    print(f"sample sheet: {args.sheet} (rows: source, input, full, full ONNX, live ONNX, live half input)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other work on this machine skews the times)")


if __name__ == "__main__":
    main()
