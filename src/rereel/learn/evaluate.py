"""Measure an autoencoder: how close its reconstructions are, and whether they are recognisable.

`rereel autoencoder eval` samples a film at 4 frames a second (at the model's size, so the
model's resolution is not counted against it) and reconstructs each frame. It reports:

* `psnr`, `ssim`: each reconstruction against its frame, averaged over the frames;
* `baseline_psnr`: the same PSNR when the film's mean frame stands in for every reconstruction;
* `shot_top1` / `time_top1`: for each reconstruction, the sampled frame it looks most like to an
  image network (cosine of the pooled features, each set centred: see `recognisability`); the
  share whose nearest frame is in the same shot as its source, or within 0.5 s of it.
  `chance_shot` is what a random guess scores.

This module needs only the media layer (docs/architecture.md): the image network and the shot
detector are handed in by the caller (the CLI passes the library's encoder and detector), so a
test can hand in doubles too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from rereel.errors import MediaError
from rereel.learn.frames import cover
from rereel.learn.toolkit import TrainProgress, resize, to_tensor, to_uint8, write_sample_sheet
from rereel.media import decode_frames, probe

PER_SECOND = 4.0
TIME_WINDOW = 0.5  # seconds either side of the source that count as "the right moment"
KEYS = ("psnr", "ssim", "baseline_psnr", "shot_top1", "time_top1", "chance_shot", "frames", "shots", "size")


class Detector(Protocol):
    """A shot detector as rereel.shots makes them: every frame in order, then the cuts."""

    frame_size: tuple[int, int]

    def push(self, index: int, time: float, rgb: np.ndarray) -> None: ...

    def finish(self) -> list[int]: ...


Embed = Callable[[np.ndarray], np.ndarray]  # (N, H, W, 3) uint8 -> (N, D) unit rows
Reconstruct = Callable[[np.ndarray], np.ndarray]  # (N, H, W, 3) uint8 -> the same shape


@dataclass
class FilmSample:
    frames: np.ndarray  # (N, H, W, 3) uint8 at model size, PER_SECOND a second
    times: np.ndarray  # (N,) seconds
    shot: np.ndarray  # (N,) shot number of each frame, from 0
    shots: int  # shots the detector found in the whole film


def sample_film(video: Path, width: int, height: int, detector: Detector, per_second: float = PER_SECOND,
                progress: bool = False) -> FilmSample:
    """One decode pass: every frame to the shot detector, `per_second` of them kept at model size."""
    dw, dh = detector.frame_size
    step = 1.0 / per_second
    frames, times, index = [], [], []
    next_t = 0.0
    with TrainProgress(max(1, probe(video).frames), 0, "sampling", enabled=progress) as bar:
        for n, f in enumerate(decode_frames(video)):
            detector.push(n, f.time, f.detector_rgb(dw, dh))
            if f.time >= next_t - 1e-6:
                next_t = max(next_t + step, f.time + step * 0.5)
                frames.append(cover(f, width, height))
                times.append(f.time)
                index.append(n)
            if n % 24 == 0:
                bar.update(n, 24, {})
    if len(frames) < 2:
        raise MediaError(video, "too short to evaluate (fewer than 2 frames at 4 a second)")
    cuts = np.array(sorted(detector.finish()), dtype=np.int64)
    # Cuts are the first frames of shots 2, 3, ...: a frame's shot is the number of cuts at or before it.
    shot = np.searchsorted(cuts, np.array(index), side="right")
    return FilmSample(np.stack(frames), np.array(times), shot, len(cuts) + 1)


def psnr_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR in dB of each pair of uint8 frames (capped at 100 dB for identical frames)."""
    mse = ((a.astype(np.float32) - b.astype(np.float32)) ** 2).reshape(len(a), -1).mean(1)
    return np.minimum(100.0, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10)))


def ssim_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) of each pair, averaged over RGB."""
    x, y = (torch.from_numpy(v).permute(0, 3, 1, 2).float() for v in (a, b))
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)
    pad = min(5, (x.shape[-1] - 1) // 2, (x.shape[-2] - 1) // 2)  # tiny frames: a smaller margin
    win = win[..., 5 - pad : 6 + pad, 5 - pad : 6 + pad]
    win = win / win.sum(dim=(-1, -2), keepdim=True)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, win, groups=3)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).numpy()


def recognisability(rec_emb: np.ndarray, src_emb: np.ndarray, shot: np.ndarray, times: np.ndarray,
                    window: float = TIME_WINDOW, centre: bool = True) -> tuple[float, float]:
    """(shot_top1, time_top1): shares of reconstructions whose nearest source frame (cosine) is in
    their own shot, or within `window` seconds of their own time.

    `centre`: each set's mean feature is taken away first (Suzuki et al. 2013, "Centering
    similarity measures to reduce hubs"). Reconstructions share a look the frames lack (the same
    blur, the same palette), and that shared offset makes a few soft frames the nearest to
    nearly all of them: on the 10 s Tears of Steel clip, a 10-minute model's 40 reconstructions,
    each plainly its own shot to the eye, all chose among the same 3 frames. Centring compares
    what is particular to each frame. It changes nothing when the sets are alike (the identity
    scores 1.0 either way). A frame equally near several frames (a tie: a constant model's
    centred features are all zero) counts as a guess among them, so a model that gives the same
    image for every frame scores chance.
    """
    if centre:
        rec_emb, src_emb = _centred(rec_emb), _centred(src_emb)
    sims = rec_emb @ src_emb.T
    tied = sims >= sims.max(1, keepdims=True) - 1e-6
    guess = tied / tied.sum(1, keepdims=True)  # the chance of picking each frame
    same_shot = shot[None, :] == shot[:, None]
    near_time = np.abs(times[None, :] - times[:, None]) <= window + 1e-6
    return float((guess * same_shot).sum(1).mean()), float((guess * near_time).sum(1).mean())


def _centred(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - x.astype(np.float64).mean(0)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    # A row with (almost) nothing of its own left is a zero vector: equally near every frame.
    return np.where(norm > 1e-4, x / np.maximum(norm, 1e-12), 0.0)


def chance_shot(shot: np.ndarray) -> float:
    """shot_top1 of a guess drawn uniformly from the sampled frames: the sum of squared shot shares."""
    share = np.bincount(shot) / len(shot)
    return float((share**2).sum())


@dataclass
class Evaluation:
    scores: dict  # exactly KEYS
    sample: FilmSample
    recs: np.ndarray  # (N, H, W, 3) uint8
    psnr: np.ndarray  # per frame

    def write_sheet(self, path: Path, min_width: int = 256) -> Path:
        """Originals above reconstructions: the best, median and worst frames by PSNR, left to right."""
        order = np.argsort(-self.psnr)
        picks = [order[0], order[len(order) // 2], order[-1]]
        h, w = self.recs.shape[1:3]
        scale = max(1, -(-min_width // w))  # small models: enlarge so the sheet can be looked at
        rows = [np.stack([resize(img[i], w * scale, h * scale) for i in picks]) for img in (self.sample.frames, self.recs)]
        return write_sample_sheet(Path(path), rows)


def evaluate(sample: FilmSample, reconstruct: Reconstruct, embed: Embed, batch: int = 32, centre: bool = True,
             src_emb: np.ndarray | None = None) -> Evaluation:
    """Score `reconstruct` on a film's sample (see the module's docstring). `src_emb`: the sampled
    frames' features, when already at hand (scoring several models on one film)."""
    frames = sample.frames
    h, w = frames.shape[1:3]
    recs = np.concatenate([reconstruct(frames[i : i + batch]) for i in range(0, len(frames), batch)])
    mean = np.broadcast_to(frames.astype(np.float32).mean(0).round().astype(np.uint8), frames.shape)
    psnr = psnr_per_frame(recs, frames)
    if src_emb is None:
        src_emb = embed_all(frames, embed, batch)
    rec_emb = embed_all(recs, embed, batch)
    shot_top1, time_top1 = recognisability(rec_emb, src_emb, sample.shot, sample.times, centre=centre)
    scores = {
        "psnr": float(psnr.mean()),
        "ssim": float(ssim_per_frame(recs, frames).mean()),
        "baseline_psnr": float(psnr_per_frame(mean, frames).mean()),
        "shot_top1": shot_top1,
        "time_top1": time_top1,
        "chance_shot": chance_shot(sample.shot),
        "frames": int(len(frames)),
        "shots": int(sample.shots),
        "size": f"{w}x{h}",
    }
    return Evaluation(scores, sample, recs, psnr)


def embed_all(frames: np.ndarray, embed: Embed, batch: int = 32) -> np.ndarray:
    return np.concatenate([embed(frames[i : i + batch]) for i in range(0, len(frames), batch)])


def model_reconstruct(model_dir: Path, device: str | None = None) -> tuple[Reconstruct, tuple[int, int]]:
    """A trained autoencoder as a Reconstruct function (latent mean, decoded), and its frame size."""
    from rereel.learn.autoencoder import load_model

    model, cfg, prec = load_model(model_dir, device)

    def reconstruct(frames: np.ndarray) -> np.ndarray:
        with torch.no_grad(), prec.autocast():
            return to_uint8(model.reconstruct(to_tensor(frames, prec.device)))

    return reconstruct, (cfg.width, cfg.height)
