"""Panini-Net image feature extractor (IFE) and latent code encoder, as in the official code.

IFE = ESRGAN RRDB feature extractor -> CBAM (official variant) -> convs down to the largest fused
resolution -> stride-2 convs down to 4x4 (the GAN-prior features F~ of paper Eq. 1). The latent head
(one conv + one fully connected layer, Eq. 3) maps the 4x4 feature to W+.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.methods.rrdb import RRDBExtractor


class OfficialCBAM(nn.Module):
    """CBAM as the official Panini code has it: one 3x3 `pre_conv` applied before the channel gate AND
    again before the spatial gate; spatial gate = 7x7 conv (no bias) + BN (momentum 0.01); no residual."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.pre_conv = nn.Conv2d(channels, channels, 3, 1, 1)
        hidden = channels // reduction
        self.channel_mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.spatial_conv = nn.Conv2d(2, 1, 7, 1, 3, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_conv(x)
        logits = self.channel_mlp(x.mean((2, 3))) + self.channel_mlp(x.amax((2, 3)))
        x = x * torch.sigmoid(logits)[:, :, None, None]
        x = self.pre_conv(x)
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial_bn(self.spatial_conv(pooled)))


def _conv_lrelu(in_ch: int, out_ch: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.LeakyReLU(0.2, True)]


class ImageEncoder(nn.Module):
    """LQ image -> image features at the fused resolutions (4 .. top) and the W+ latent.

    `stem_widths`: output channels of the convs after CBAM; the first has stride 1, the others stride 2
    (official MFR: 32, 64, 128, 512 for 512 -> 64 px; SR: 512 for 64 -> 64 px).
    """

    def __init__(
        self, rrdb_channels: int, num_rrdbs: int, rrdb_growth: int, cbam_reduction: int,
        stem_widths: Sequence[int], num_fusions: int, latent_channels: int, num_latents: int, style_dim: int,
    ):
        super().__init__()
        self.extractor = RRDBExtractor(3, rrdb_channels, num_rrdbs, rrdb_growth)
        self.attention = OfficialCBAM(rrdb_channels, cbam_reduction)
        stem: list[nn.Module] = []
        in_ch = rrdb_channels
        for i, width in enumerate(stem_widths):
            stem += _conv_lrelu(in_ch, width, 1 if i == 0 else 2)
            in_ch = width
        self.stem = nn.Sequential(*stem)
        self.downs = nn.ModuleList(nn.Sequential(*_conv_lrelu(in_ch, in_ch, 2)) for _ in range(num_fusions - 1))
        self.latent_conv = nn.Conv2d(in_ch, latent_channels, 3, 1, 1)
        self.latent_fc = nn.Linear(latent_channels * 16, num_latents * style_dim)
        self.num_latents, self.style_dim = num_latents, style_dim

    def forward(self, lq: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Returns ([feature at 4 px, 8 px, ..., top px], W+ (N, num_latents, style_dim))."""
        feat = self.stem(self.attention(self.extractor(lq)))
        feats = [feat]
        for down in self.downs:
            feats.append(down(feats[-1]))
        hidden = F.leaky_relu(self.latent_conv(feats[-1]), 0.2)
        latent = self.latent_fc(hidden.flatten(1)).view(-1, self.num_latents, self.style_dim)
        return feats[::-1], latent
