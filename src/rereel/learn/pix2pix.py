"""pix2pix (Isola et al. 2017): a U-Net generator and a 70x70 PatchGAN discriminator.

Layers as in the paper's appendix: 4x4 convolutions with stride 2, LeakyReLU 0.2 going
down, ReLU coming up, skip connections between mirrored layers, dropout 0.5 in the three
innermost up layers. For 256x256 the encoder is C64-C128-C256-C512-C512-C512-C512-C512;
smaller sizes drop innermost 512 layers so the bottleneck is always 1x1 for a square.

Normalisation is instance norm: the paper trains with batch size 1 and batch-norm
statistics taken from the test batch, which is instance norm; writing it so lets us
train with larger batches and render one frame at a time identically.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def depth_for(size: int) -> int:
    """Down layers for a square of `size` pixels: 8 for 256, 7 for 128, 6 for 64."""
    d = int(math.log2(size)) if size > 0 else 0  # log2 of 0 or less: a math domain error
    # 32 at least: at 16 the patch discriminator's last layers are 1x1, which its instance norm
    # cannot normalise (training failed at its first step).
    if 2**d != size or d < 5:
        raise ValueError(f"size {size}: pix2pix needs a power of two of at least 32 (e.g. 256)")
    return d


class UNetGenerator(nn.Module):
    def __init__(self, size: int = 256, base: int = 64, dropout: float = 0.5):
        super().__init__()
        self.depth = depth_for(size)
        chans = [min(base * 2**i, base * 8) for i in range(self.depth)]
        self.downs = nn.ModuleList()
        c_in = 3
        for i, c in enumerate(chans):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0 or i == self.depth - 1))
            if 0 < i < self.depth - 1:  # none on the image layer nor the 1x1 bottleneck (as in pix2pix)
                layers.append(nn.InstanceNorm2d(c, affine=True))
            self.downs.append(nn.Sequential(*layers))
            c_in = c
        self.ups = nn.ModuleList()
        for i in reversed(range(self.depth)):
            c_out = 3 if i == 0 else chans[i - 1]
            c_in = chans[i] if i == self.depth - 1 else chans[i] * 2  # skip connections double the input
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
                if i >= self.depth - 3 and dropout:
                    layers.append(nn.Dropout(dropout))
            else:
                layers.append(nn.Tanh())
            self.ups.append(nn.Sequential(*layers))

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (fully convolutional otherwise)."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up layer directly
        for up in self.ups:
            x = up(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        return x


class PatchDiscriminator(nn.Module):
    """C64-C128-C256-C512 then a 1-channel conv: each output judges a 70x70 patch of the pair."""

    def __init__(self, base: int = 64):
        super().__init__()
        c = [base, base * 2, base * 4, base * 8]
        self.net = nn.Sequential(
            nn.Conv2d(6, c[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c[0], c[1], 4, 2, 1, bias=False), nn.InstanceNorm2d(c[1], affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c[1], c[2], 4, 2, 1, bias=False), nn.InstanceNorm2d(c[2], affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c[2], c[3], 4, 1, 1, bias=False), nn.InstanceNorm2d(c[3], affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c[3], 1, 4, 1, 1),
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], 1))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and N(1, 0.02) for norm scales, as pix2pix does."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
