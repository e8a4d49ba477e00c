"""Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric" (VAE-GAN).

As Terence Broad used it for "Autoencoding Blade Runner": a convolutional encoder to a
Gaussian latent (200-d), a mirrored decoder, and a discriminator whose hidden-layer
activations replace the pixel-wise reconstruction error, plus the VAE's KL term and the
GAN's real/fake term. Layers follow the paper's table: 5x5 convolutions with stride 2,
batch norm and ReLU, channels doubling 64, 128, 256 (and 512 for a fourth layer at
256x144), a fully connected latent, and the transposed stack in the decoder.

Frames of any size whose sides halve cleanly down to about 9 pixels work: 256x144 uses
four stride-2 layers to 16x9, 128x72 three, 64x36 two.
"""

from __future__ import annotations

import torch
from torch import nn


def n_downsamples(width: int, height: int, most: int = 4) -> int:
    """How many stride-2 layers take the frame down to its smallest clean size (>= 4 px)."""
    n = 0
    while n < most and width % 2 == 0 and height % 2 == 0 and min(width, height) // 2 >= 4:
        width, height, n = width // 2, height // 2, n + 1
    return n


def _channels(base: int, n: int) -> list[int]:
    return [min(base * 2**i, base * 8) for i in range(n)]


class VaeEncoder(nn.Module):
    def __init__(self, width: int, height: int, latent: int, base: int = 64, hidden: int = 2048):
        super().__init__()
        n = n_downsamples(width, height)
        chans = _channels(base, n)
        layers, c_in = [], 3
        for c in chans:
            layers += [nn.Conv2d(c_in, c, 5, 2, 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        flat = c_in * (width >> n) * (height >> n)
        # The paper's 2048 units; on a CPU this one layer holds most of the weights and a fifth
        # of a step goes to its Adam update, so the laptop preset narrows it (autoencoder.PRESETS).
        self.fc = nn.Sequential(nn.Linear(flat, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x).flatten(1))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, width: int, height: int, latent: int, base: int = 64):
        super().__init__()
        n = n_downsamples(width, height)
        chans = _channels(base, n)[::-1]  # mirror of the encoder: widest first
        self.shape = (chans[0], height >> n, width >> n)
        self.fc = nn.Sequential(
            nn.Linear(latent, chans[0] * self.shape[1] * self.shape[2], bias=False),
            nn.BatchNorm1d(chans[0] * self.shape[1] * self.shape[2]),
            nn.ReLU(inplace=True),
        )
        layers, c_in = [], chans[0]
        # Each layer doubles the size; the last narrows to base // 2 as in the paper (32). The paper's
        # 5x5 stride-2 transposed convolutions overlap unevenly and print a checkerboard over every
        # frame (seen at 256x144); nearest upsampling then a 5x5 conv is the same layer without it
        # (Odena et al. 2016, "Deconvolution and checkerboard artifacts").
        for c in chans[1:] + [max(8, base // 2)]:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c, 5, 1, 2, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        layers += [nn.Conv2d(c_in, 3, 5, 1, 2), nn.Tanh()]
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconvs(self.fc(z).view(-1, *self.shape))


class Discriminator(nn.Module):
    """Real/fake classifier; `features` is Dis_l, the layer whose activations measure similarity."""

    def __init__(self, width: int, height: int, base: int = 64):
        super().__init__()
        n = n_downsamples(width, height)
        c0 = max(8, base // 2)
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 5, 1, 2), nn.LeakyReLU(0.2, inplace=True))
        chans = [min(base * 2 ** (i + 1), base * 8) for i in range(n)]  # 128, 256, 256 in the paper
        if n > 1:
            chans[-1] = chans[-2]
        # Dis_l is the batch-normed output of the third stride-2 conv, before its nonlinearity, as in
        # the paper: features at 1/8 of the frame on a fixed scale, so the similarity loss cannot drift
        # in size. At 256x144 (four layers) a fourth layer follows in the head; taking Dis_l at 1/16
        # instead left reconstructions as grey blobs of the right layout.
        k = min(n, 3)
        layers, c_in = [], c0
        for i, c in enumerate(chans):
            layers.append(nn.Sequential(
                *([nn.LeakyReLU(0.2, inplace=False)] if i else []),
                nn.Conv2d(c_in, c, 5, 2, 2, bias=False), nn.BatchNorm2d(c)))
            c_in = c
        self.features_net = nn.Sequential(*layers[:k])
        flat = c_in * (width >> n) * (height >> n)
        self.head = nn.Sequential(
            *layers[k:],
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(flat, 512, bias=False),
            nn.BatchNorm1d(512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit of 'real', Dis_l features) for a batch of images in [-1, 1]."""
        f = self.features_net(self.stem(x))
        return self.head(f).squeeze(1), f


class VAEGAN(nn.Module):
    def __init__(self, width: int = 256, height: int = 144, latent: int = 200, base: int = 64, hidden: int = 2048):
        super().__init__()
        if n_downsamples(width, height) < 2:
            raise ValueError(f"{width}x{height} does not halve cleanly; use sides divisible by 4 (e.g. 256x144)")
        self.width, self.height, self.latent = width, height, latent
        self.encoder = VaeEncoder(width, height, latent, base, hidden)  # state-dict keys follow the attribute, not the class
        self.decoder = Decoder(width, height, latent, base)
        self.discriminator = Discriminator(width, height, base)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode each frame's latent mean: the deterministic reconstruction used for rendering."""
        mu, _ = self.encoder(x)
        return self.decoder(mu)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def feature_error(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Dis_l log-likelihood under a unit Gaussian: half the squared error, summed per image."""
    return 0.5 * (fake - real).pow(2).flatten(1).sum(1).mean()
