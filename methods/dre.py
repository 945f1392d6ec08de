"""Degradation representation encoder (DRE) of Panini-Net, pre-trained with UDRL (MoCo).

Six 3x3 conv + BatchNorm + LeakyReLU(0.1) layers (strides 1,1,2,1,2,1) and a global average pool
give v_DR (paper Eq. 5, 256-d in the official model). The MoCo projection head (`projection`) is only
used by the contrastive loss; Panini-Net uses the pooled feature before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError


class DegradationEncoder(nn.Module):
    """Image (N, 3, H, W) in [-1, 1] -> v_DR (N, widths[-1]).

    Keys `body.{0..18}.*` follow the official `E.{i}` indices; `projection.{0,2}.*` the official `mlp`.
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256), with_projection: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for level, width in enumerate(widths):
            for stride in ((1, 1) if level == 0 else (2, 1)):
                layers += [nn.Conv2d(in_ch, width, 3, stride, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.1, True)]
                in_ch = width
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.body = nn.Sequential(*layers)
        self.dim = in_ch
        self.projection = (
            nn.Sequential(nn.Linear(in_ch, in_ch), nn.LeakyReLU(0.1, True), nn.Linear(in_ch, in_ch))
            if with_projection
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """The MoCo projection of v_DR (what the contrastive loss compares)."""
        if self.projection is None:
            raise ValueError("this encoder was built without the projection head (with_projection=False)")
        return self.projection(v)


def official_dre_to_ours(state: Mapping[str, Any], keep_projection: bool = True) -> dict[str, Any]:
    """Official `Encoder` keys (`E.*`, `mlp.*`, no prefix) -> DegradationEncoder keys."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith("E."):
            out["body." + key[2:]] = value
        elif key.startswith("mlp."):
            if keep_projection:
                out["projection." + key[4:]] = value
        else:
            out[key] = value  # unknown: left for the strict load to report
    return out


def moco_checkpoint_to_ours(checkpoint: Mapping[str, Any], keep_projection: bool = True) -> dict[str, Any]:
    """The released MoCo file (`moco_checkpoint_0199.pth.tar`) -> DegradationEncoder keys.

    Takes the query encoder `module.encoder_q.*` (what Panini_MFR copies in); the momentum encoder,
    queue and optimiser state are training-only and dropped.
    """
    state = checkpoint.get("state_dict", checkpoint)
    prefix = next((p for p in ("module.encoder_q.", "encoder_q.") if any(k.startswith(p) for k in state)), None)
    if prefix is None:
        sample = ", ".join(sorted(state)[:5])
        raise BenchError(
            "MoCo DRE checkpoint: no 'module.encoder_q.*' entries in its state_dict "
            f"(first keys: {sample}); pass moco_checkpoint_0199.pth.tar from the Panini-Net release"
        )
    query = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return official_dre_to_ours(query, keep_projection=keep_projection)
