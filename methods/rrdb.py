"""ESRGAN residual-in-residual dense blocks (RRDB), shared by the Panini-Net and GLEAN encoders.

Keys follow the MMEditing names both official checkpoints use: `conv_first`, `body.{i}.rdb{1,2,3}.conv{1..5}`,
`conv_body`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs with dense concatenation; output 0.2 * conv5 + x (ESRGAN). Keys `conv1..conv5`."""

    def __init__(self, channels: int, growth: int = 32):
        super().__init__()
        for i in range(5):
            out_ch = channels if i == 4 else growth
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels + i * growth, out_ch, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and x.is_contiguous():
            return self._forward_preallocated(x)
        feats = [x]
        for i in range(1, 5):
            conv = getattr(self, f"conv{i}")
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x

    def _forward_preallocated(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: each conv writes into one growing buffer instead of re-concatenating (identical numbers,
        ~20% less CPU time at 512 px). Not used under autograd, where the in-place writes would break backward."""
        c, g = x.shape[1], self.conv1.out_channels
        buf = x.new_empty(x.shape[0], c + 4 * g, *x.shape[2:])
        buf[:, :c] = x
        for i in range(1, 5):
            lo = c + (i - 1) * g
            buf[:, lo : lo + g] = F.leaky_relu_(getattr(self, f"conv{i}")(buf[:, :lo]), 0.2)
        return self.conv5(buf) * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks with a 0.2-scaled residual. Keys `rdb1..rdb3`."""

    def __init__(self, channels: int, growth: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(channels, growth)
        self.rdb2 = ResidualDenseBlock(channels, growth)
        self.rdb3 = ResidualDenseBlock(channels, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBExtractor(nn.Module):
    """conv_first -> num_blocks RRDB -> conv_body, with a long residual; no upsampling."""

    def __init__(self, in_ch: int, channels: int, num_blocks: int, growth: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_ch, channels, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(channels, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))
