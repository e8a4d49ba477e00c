"""The one small training toolkit both learn models share.

Device and precision, checkpoints that resume exactly, a progress bar with the losses,
and sample sheets. The training loops themselves live with their models
(autoencoder.py, see.py) and read top to bottom, nanoGPT style.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from rereel.device import best_device
from rereel.errors import RereelError
from rereel.outputs import save_image, write_file, write_text

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"


# --- device and precision ------------------------------------------------------------------


@dataclass
class Precision:
    """Where the model runs and in what number format its forward pass is computed."""

    device: torch.device
    dtype: torch.dtype | None  # autocast dtype; None runs in float32

    @property
    def name(self) -> str:
        return f"{self.device.type} {str(self.dtype).replace('torch.', '') if self.dtype else 'float32'}"

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # Only float16 needs loss scaling; bfloat16 has float32's exponent range.
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)


def choose_precision(device: str | None = None, mixed: bool = True) -> Precision:
    """CUDA with bf16 (fp16 on older cards) autocast, else Apple's MPS, else the CPU in float32.

    The CPU stays in float32: bf16 autocast there is slower than float32 on most laptops.
    """
    dev = torch.device(best_device(device))
    dtype = None
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if mixed:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Precision(dev, dtype)


# --- reproducible randomness ---------------------------------------------------------------


def rng_state(np_rng: np.random.Generator | None = None) -> dict:
    """Every random stream training draws from, so a resumed run draws the same numbers."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if np_rng is not None:
        state["numpy"] = _jsonable(np_rng.bit_generator.state)
    return state


def set_rng_state(state: dict, np_rng: np.random.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if np_rng is not None and "numpy" in state:
        np_rng.bit_generator.state = json.loads(state["numpy"])


def _jsonable(state: dict) -> str:
    # PCG64's 128-bit state is a plain Python int: JSON keeps it exactly, and a string
    # loads under torch.load(weights_only=True).
    return json.dumps(state)


# --- checkpoints ---------------------------------------------------------------------------


def save_checkpoint(model_dir: Path, state: dict, config: dict) -> Path:
    """Write the checkpoint and a readable config.json (the config and the step), each
    atomically (temp name, then rename).

    An interrupted save leaves the previous checkpoint intact, never half a file.
    """
    path = write_file(model_dir / CHECKPOINT, lambda tmp: torch.save({**state, "config": config}, tmp))
    # With the step it was saved at, for readers (the web app's model list) that will not load the checkpoint.
    write_text(model_dir / CONFIG, json.dumps({**config, "step": state.get("step")}, indent=2) + "\n")
    return path


_KINDS = {"autoencoder": "an autoencoder", "see": "a learning-to-see"}  # as the messages name them


def load_checkpoint(model_dir: Path, kind: str, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint in `model_dir`; a RereelError naming the folder if it is missing or wrong."""
    model_dir = Path(model_dir)
    path = model_dir / CHECKPOINT
    if not model_dir.exists():
        raise RereelError(f"{model_dir}: no such model folder")
    if not path.exists():
        raise RereelError(f"{model_dir}: not a trained model (no {CHECKPOINT}; train one first)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say so in one line
        first = (str(e).splitlines() or [""])[0]
        if len(first) > 120:  # PyTorch's run on for paragraphs: the first words, cut at a word
            first = first[:120].rsplit(" ", 1)[0] + " …"
        raise RereelError(f"{path}: unreadable checkpoint ({type(e).__name__}: {first})") from None
    got = ckpt.get("config", {}).get("kind")
    if got != kind:
        raise RereelError(f"{model_dir}: holds {_KINDS.get(got, 'an unknown kind of')} model, not {_KINDS.get(kind, kind)} model")
    return ckpt


# --- progress ------------------------------------------------------------------------------


class _TimeLeft(TimeRemainingColumn):
    """Rich's time remaining, but no more than a deadline's (`time.monotonic()`) time left: a run
    given a budget of minutes (`autoencoder train --minutes`) ends then, whatever the steps say."""

    def __init__(self, deadline: float | None):
        super().__init__()
        self.deadline = deadline

    def render(self, task):
        if self.deadline is not None and not task.finished:
            left = max(0.0, self.deadline - time.monotonic())
            if task.time_remaining is None or task.time_remaining > left:
                m, s = divmod(int(left + 0.999), 60)
                return Text(f"{m // 60}:{m % 60:02d}:{s:02d}", style="progress.remaining")
        return super().render(task)


class TrainProgress:
    """A Rich progress bar whose text shows the latest losses and images per second; its time
    remaining is capped by `deadline` (a `time.monotonic()` time) where a run has one."""

    def __init__(self, total: int, start: int = 0, description: str = "training", enabled: bool = True,
                 deadline: float | None = None):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),  # file names: no markup
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _TimeLeft(deadline),
            TextColumn("{task.fields[losses]}", markup=False),
            console=Console(highlight=False, markup=False, emoji=False),  # its log() prints file names
            disable=not enabled,
        )
        self._task = self._progress.add_task(description, total=total, completed=start, losses="")
        self._t0 = time.perf_counter()
        self._seen = 0

    def __enter__(self) -> "TrainProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def update(self, step: int, images: int, losses: dict[str, float]) -> None:
        self._seen += images
        rate = self._seen / max(1e-9, time.perf_counter() - self._t0)
        text = "  ".join(f"{k} {v:.3f}" for k, v in losses.items()) + f"  {rate:.1f} img/s"
        self._progress.update(self._task, completed=step, losses=text)

    def log(self, message: str) -> None:
        if self.enabled:
            self._progress.console.print(message)


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """A discriminator's binary cross-entropy against all-real (True) or all-fake (False) labels."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


# --- images --------------------------------------------------------------------------------


def to_tensor(frames: np.ndarray | list[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) to a float tensor (N, 3, H, W) in [-1, 1], the models' range."""
    arr = np.stack(frames) if isinstance(frames, list) else frames
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """A float tensor (N, 3, H, W) in [-1, 1] back to uint8 frames (N, H, W, 3)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def write_sample_sheet(path: Path, rows: list[np.ndarray], gap: int = 2) -> Path:
    """A PNG grid: each row is (N, H, W, 3) uint8 frames side by side, rows stacked downwards."""
    n, h, w = rows[0].shape[:3]
    sheet = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    return save_image(Image.fromarray(sheet), path)


def load_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3); a RereelError naming the file if it cannot be read."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise RereelError(f"{path}: no such file") from None
    except Exception as e:
        raise RereelError(f"{path}: not an image that can be read ({type(e).__name__})") from None


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an RGB frame: area filter going down (no aliasing), cubic going up (no blocks)."""
    import cv2

    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(frame, (width, height), interpolation=interp)


# --- ONNX Runtime, the CPU's per-frame path ------------------------------------------------


def export_onnx(model: torch.nn.Module, path: Path, example: torch.Tensor) -> Path:
    """`model` (eval mode) to an ONNX file with free batch, height and width; written under a temp name, then renamed."""
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial.onnx")  # two servers exporting at once each get their own
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes, not the user's business
            torch.onnx.export(model.eval(), example, str(tmp), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": axes, "y": axes}, opset_version=17, dynamo=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_session(path: Path):
    """The Seer's ONNX Runtime session: the encoder's CPU recipe (idle workers sleep, since the
    Seer runs one frame at a time beside the web server's threads)."""
    from rereel.device import onnx_cpu_session

    return onnx_cpu_session(path)


def same_settings(model_dir: Path, given: dict[str, tuple[object, object]]) -> None:
    """A resume goes on with the model's own settings (its architecture, its data and their
    order): `given` maps each option a user gave to (the value given, the model's value), and a
    value that differs is refused, not ignored."""
    changed = [f"{option} {saved} (given {value})" for option, (value, saved) in given.items() if value != saved]
    if changed:
        raise RereelError(f"{model_dir}: --resume goes on with the model's own {', '.join(changed)}; leave "
                          f"{'those options' if len(changed) > 1 else 'that option'} out, or train a new model in another folder")


def same_inputs(given, saved: list[str], model_dir: Path, what: str) -> None:
    """A resume goes on with the inputs the model was started on: others given are refused, not ignored."""
    if given and {Path(p).resolve() for p in given} != {Path(p).resolve() for p in saved}:
        raise RereelError(f"{model_dir}: --resume goes on with the {what} the model was started on "
                          f"({', '.join(saved[:3])}{', ...' if len(saved) > 3 else ''}); name those, "
                          "or train a new model in another folder")
