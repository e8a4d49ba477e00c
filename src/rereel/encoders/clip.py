"""An optional CLIP / SigLIP encoder (Hugging Face transformers): images and words in one space.

With it, `rereel similar "water flowing over rocks"` compares the words' text embedding with
the shots' image embeddings directly, instead of going through ImageNet class names.

Install with `pip install rereel[clip]`. The checkpoint is a local folder or a hub id, taken
from the `model=` argument, else $REREEL_CLIP_MODEL, else `DEFAULT_CHECKPOINT`. Nothing is
downloaded unless the user names a hub id that is not cached: set HF_HUB_OFFLINE=1 to forbid
it. The checkpoint's name is part of the encoder signature, so a library embedded with one
checkpoint refuses queries from another instead of comparing unrelated vectors.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np

from rereel.encoders.base import Encoder, Features, l2_normalise
from rereel.encoders.colour import colour_signature
from rereel.device import best_device, cpu_threads
from rereel.encoders.registry import register
from rereel.errors import RereelError

DEFAULT_CHECKPOINT = "openai/clip-vit-base-patch32"
# OpenAI CLIP's normalisation; SigLIP checkpoints state their own (0.5, 0.5) in their
# preprocessor config, which is read when the checkpoint has one.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def checkpoint_slug(checkpoint: str) -> str:
    """A short, signature-safe name for a checkpoint: its last path part."""
    name = Path(str(checkpoint).rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:60]


@register("clip")
class ClipEncoder(Encoder):
    """CLIPModel or SiglipModel (anything with get_image_features / get_text_features)."""

    dim = 0  # set from the checkpoint's projection size
    grid_cells = (3, 3)

    def __init__(self, device: str | None = None, model: str | None = None):
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError:
            raise RereelError("the clip encoder needs Hugging Face transformers: pip install 'rereel[clip]'") from None
        from transformers import AutoModel, AutoTokenizer

        self.checkpoint = model or os.environ.get("REREEL_CLIP_MODEL") or DEFAULT_CHECKPOINT
        self.device = best_device(device)
        # The checkpoint is part of the version so that libraries from two checkpoints never mix.
        self.version = f"1+{checkpoint_slug(self.checkpoint)}"
        try:
            self.model = AutoModel.from_pretrained(self.checkpoint).eval().to(self.device)
            self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        except (OSError, ValueError) as e:
            raise RereelError(f"cannot load CLIP checkpoint {self.checkpoint!r}: {str(e).splitlines()[0]}") from None
        if not hasattr(self.model, "get_image_features") or not hasattr(self.model, "get_text_features"):
            raise RereelError(f"{self.checkpoint!r} is not a CLIP-style model (no image and text towers)")
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads())
        vision = self.model.config.vision_config
        size = int(vision.image_size)
        self.input_size = (size, size)
        self.patch_side = size // int(vision.patch_size)
        self.dim = int(getattr(self.model.config, "projection_dim", 0) or self.model.config.text_config.hidden_size)
        self.mean, self.std = self._normalisation()
        # SigLIP is trained with text padded to its full length; CLIP with the shortest padding.
        self.pad_to_max = "siglip" in type(self.model).__name__.lower()
        self._lock = threading.Lock()

    def _normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        mean, std = CLIP_MEAN, CLIP_STD
        try:
            from transformers import AutoImageProcessor

            proc = AutoImageProcessor.from_pretrained(self.checkpoint)
            mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # a checkpoint without a preprocessor config: CLIP's own constants
        return np.array(mean, np.float32) * 255.0, np.array(std, np.float32) * 255.0

    @staticmethod
    def _pooled(out):
        # transformers 5 returns a model output (projected embedding in pooler_output); 4.x a tensor.
        return out if hasattr(out, "shape") else out.pooler_output

    def embed(self, frames: np.ndarray) -> Features:
        import torch

        if tuple(frames.shape[1:3]) != (self.input_size[1], self.input_size[0]):
            raise ValueError(f"clip wants {self.input_size[0]}x{self.input_size[1]} frames, got {frames.shape[1:3]}")
        x = (frames.astype(np.float32) - self.mean) / self.std
        pixels = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        with self._lock, torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels)
            embedding = self._pooled(out)
            hidden = getattr(out, "last_hidden_state", None)
            if hidden is None:  # transformers 4.x: one more pass through the vision tower for the patches
                hidden = self.model.vision_model(pixel_values=pixels).last_hidden_state
        embedding = embedding.float().cpu().numpy()
        hidden = hidden.float().cpu().numpy()
        return Features(
            embedding=l2_normalise(embedding).astype(np.float32),
            grid=self._patch_grid(hidden).astype(np.float16),
            colour=colour_signature(frames),
        )

    def _patch_grid(self, hidden: np.ndarray) -> np.ndarray:
        """Patch tokens pooled to a 3x3 grid, each cell a unit vector (like effnet's composition grid)."""
        n, _, c = hidden.shape
        side = self.patch_side
        patches = hidden[:, -side * side :, :].reshape(n, side, side, c)  # CLIP's class token comes first
        gh, gw = self.grid_cells
        cells = np.empty((n, gh, gw, c), np.float32)
        for i in range(gh):
            h0, h1 = (i * side) // gh, -((-(i + 1) * side) // gh)
            for j in range(gw):
                w0, w1 = (j * side) // gw, -((-(j + 1) * side) // gw)
                cells[:, i, j] = patches[:, h0:h1, w0:w1].mean(axis=(1, 2))
        return (l2_normalise(cells, axis=-1).reshape(n, -1) / np.sqrt(gh * gw)).astype(np.float32)

    def embed_text(self, text: str) -> np.ndarray:
        import torch

        text = text.strip()
        if not text:
            raise RereelError("empty text query")
        padding = "max_length" if self.pad_to_max else True
        tokens = self.tokenizer([text], padding=padding, truncation=True, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        if self.pad_to_max:
            tokens.pop("attention_mask", None)  # SigLIP's text tower is not trained with a mask
        with self._lock, torch.inference_mode():
            vec = self._pooled(self.model.get_text_features(**tokens))
        return l2_normalise(vec.float().cpu().numpy()[0]).astype(np.float32)
