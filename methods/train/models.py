"""The networks the trainers build, from config values (one place that knows the model APIs)."""

from __future__ import annotations

from torch import nn

DRE_STRIDES = (1, 1, 2, 1, 2, 1)


class DegradationEncoder(nn.Module):
    """DRE: six 3x3 conv + BN + LeakyReLU(0.1) (strides 1,1,2,1,2,1), global average pool, MLP head.

    Module names follow the official `Encoder` (`E.*`, `mlp.*`) so state_dicts match the MoCo
    checkpoint layout. `forward` returns (pooled feature, MLP projection): Panini uses the first,
    MoCo's contrastive loss the second.
    """

    def __init__(self, channels=(64, 64, 128, 128, 256, 256), dim: int = 256):
        super().__init__()
        layers, in_ch = [], 3
        for out_ch, stride in zip(channels, DRE_STRIDES, strict=True):
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride, 1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.1, True)]
            in_ch = out_ch
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.E = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(in_ch, in_ch), nn.LeakyReLU(0.1, True), nn.Linear(in_ch, dim))

    def forward(self, x):
        fea = self.E(x).flatten(1)
        return fea, self.mlp(fea)
