"""Panini-Net (Wang, Hu, Zhang, AAAI 2022): GAN-prior face restoration with degradation-aware
feature interpolation (DAFI), for multi-degradation restoration (MFR, 512 -> 1024) and 16x SR (64 -> 1024).

Forward order (official code, spec §1.4): v_DR from the DRE (MFR) or a learned constant (SR) ->
one MLP gives per-block channel masks (softmax over a pair axis: m1 weights the GAN-prior feature
F_GPB, m2 = 1 - m1 the image feature F_IFE); the image encoder gives features at 4..64 px and W+;
the StyleGAN2 synthesis runs on W+ with stored noise, and before the up-conv of each of the first
five stages its feature is replaced by `m1 * F_GPB + m2 * conv3x3(F_enc)` (paper Eq. 7). The RGB
skip branch uses un-fused features, as in the official code.

Analysis (paper Eq. 11-13): `analyze()` returns masks (N, 5, C), θ (N, 5), W+ and v_DR;
`dissection="ife"` zeroes F_GPB (Eq. 12), `dissection="gpb"` zeroes F_IFE (Eq. 13); `mask_bias`
adds a bias to the masks (clamped to [0, 1], complement recomputed) for alternative restorations.
`fusion="catconv"` is the paper's Ablation A (no DRE; concat + conv instead of DAFI).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import nn

from bench.errors import BenchError
from bench.methods.dre import DegradationEncoder
from bench.methods.panini_encoder import ImageEncoder
from bench.methods.stylegan2 import StyleGAN2Generator, SynthesisHooks, default_channels

DISSECTION_MODES = (None, "ife", "gpb")


@dataclass(frozen=True)
class PaniniConfig:
    """Everything that shapes a Panini-Net; the official configurations are `official_config(task)`.

    task: "mfr" (DRE on the input) or "sr" (learned constant vector instead of v_DR).
    fusion: "dafi" (the paper's method) or "catconv" (Ablation A: no DRE / constant, no masks).
    train_dre: official code trains the DRE with everything else (default); the paper keeps it fixed.
    """

    task: str = "mfr"
    in_size: int = 512
    out_size: int = 1024
    fusion: str = "dafi"
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    generator_channels: dict[int, int] | None = None
    num_fusions: int = 5
    rrdb_channels: int = 8
    num_rrdbs: int = 2
    rrdb_growth: int = 32
    cbam_reduction: int = 2
    stem_widths: tuple[int, ...] = (32, 64, 128, 512)
    latent_channels: int = 256
    dre_widths: tuple[int, ...] = (64, 128, 256)
    dre_input_size: int = 256
    dr_dim: int = 256
    train_dre: bool = True

    @property
    def fused_sizes(self) -> list[int]:
        return [4 * 2**k for k in range(self.num_fusions)]


def official_config(task: str, **overrides) -> PaniniConfig:
    """The released models: MFR (8-ch / 2-RRDB extractor) and SR (64-ch / 23-RRDB extractor)."""
    if task == "mfr":
        base = PaniniConfig()
    elif task == "sr":
        base = PaniniConfig(task="sr", in_size=64, rrdb_channels=64, num_rrdbs=23, cbam_reduction=8,
                            stem_widths=(512,))
    else:
        raise ValueError(f"task must be 'mfr' or 'sr', got {task!r}")
    return replace(base, **overrides)


def tiny_config(task: str, **overrides) -> PaniniConfig:
    """A few-second CPU configuration with the same code path (5 fusions, 256 px output)."""
    channels = {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 8, 256: 8}
    common = dict(out_size=256, style_dim=32, n_mlp=2, generator_channels=channels, rrdb_channels=4,
                  num_rrdbs=1, rrdb_growth=8, cbam_reduction=2, latent_channels=8, dre_widths=(8, 16, 16),
                  dre_input_size=64, dr_dim=16)
    if task == "mfr":
        base = PaniniConfig(task="mfr", in_size=128, stem_widths=(8, 16), **common)
    elif task == "sr":
        base = PaniniConfig(task="sr", in_size=64, stem_widths=(16,), **common)
    else:
        raise ValueError(f"task must be 'mfr' or 'sr', got {task!r}")
    return replace(base, **overrides)


class PaniniOutputs(NamedTuple):
    image: torch.Tensor  # (N, 3, out, out), raw output (RGB, nominally [-1, 1], not clamped)
    masks: torch.Tensor | None  # (N, num_fusions, C): weight of F_GPB per block and channel (after bias)
    theta: torch.Tensor | None  # (N, num_fusions): Eq. (11), channel mean of each mask
    latent: torch.Tensor  # (N, num_latents, style_dim): W+
    dr: torch.Tensor | None  # (N, dr_dim): v_DR (MFR) or the learned constant (SR)


class PaniniNet(nn.Module):
    """Panini-Net backbone. forward(lq in [-1, 1], N x 3 x in x in) -> raw RGB output at out_size."""

    def __init__(self, config: PaniniConfig):
        super().__init__()
        _validate(config)
        self.config = config
        self.channels_last = False
        c = config
        self.generator = StyleGAN2Generator(c.out_size, style_dim=c.style_dim, n_mlp=c.n_mlp,
                                            channel_multiplier=c.channel_multiplier, channels=c.generator_channels)
        fused_ch = self.generator.channels[c.fused_sizes[0]]
        self.fused_channels = fused_ch
        if c.fusion == "dafi" and c.task == "sr":
            self.dr_constant = nn.Parameter(torch.randn(1, c.dr_dim))
        if c.fusion == "dafi" and c.task == "mfr":
            self.dre_pool = nn.AdaptiveAvgPool2d(c.dre_input_size)
            self.dre = DegradationEncoder(c.dre_widths, with_projection=False)
            if not c.train_dre:
                self.dre.requires_grad_(False)
        self.encoder = ImageEncoder(c.rrdb_channels, c.num_rrdbs, c.rrdb_growth, c.cbam_reduction, c.stem_widths,
                                    c.num_fusions, c.latent_channels, self.generator.num_latents, c.style_dim)
        if c.fusion == "dafi":
            self.mask_mlp = nn.Sequential(nn.Linear(c.dr_dim, c.dr_dim), nn.LeakyReLU(0.1, True),
                                          nn.Linear(c.dr_dim, c.num_fusions * 2 * fused_ch))
            self.fusion_convs = nn.ModuleList(nn.Conv2d(fused_ch, fused_ch, 3, 1, 1) for _ in c.fused_sizes)
        else:
            self.fusion_convs = nn.ModuleList(nn.Conv2d(2 * fused_ch, fused_ch, 3, 1, 1) for _ in c.fused_sizes)

    def set_channels_last(self, enabled: bool = True) -> PaniniNet:
        """Run the image encoder and DRE in channels-last memory format (about 1.3-1.5x faster on CPU).

        Off by default: the default layout reproduces the official outputs bit-for-bit on CPU; channels-last
        changes float32 summation order (deviation of order 1e-6, well inside the golden tolerance).
        """
        fmt = torch.channels_last if enabled else torch.contiguous_format
        self.encoder.to(memory_format=fmt)
        if hasattr(self, "dre"):
            self.dre.to(memory_format=fmt)
        self.channels_last = enabled
        return self

    def train(self, mode: bool = True) -> PaniniNet:
        super().train(mode)
        if hasattr(self, "dre") and not self.config.train_dre:
            self.dre.eval()  # paper: the DRE is fixed, BatchNorm statistics included
        return self

    # -- pieces ------------------------------------------------------------------------------------

    def degradation_representation(self, lq: torch.Tensor) -> torch.Tensor | None:
        """v_DR (N, dr_dim): DRE of the pooled input (MFR) or the learned constant (SR); None for Cat-Conv."""
        if self.config.fusion != "dafi":
            return None
        if self.config.task == "sr":
            return self.dr_constant.expand(lq.shape[0], -1)
        return self.dre(self.dre_pool(lq))

    def masks_from_dr(self, dr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m1, m2), each (N, num_fusions, C): softmax over the pair axis; m1 weights F_GPB."""
        logits = self.mask_mlp(dr).view(dr.shape[0], self.config.num_fusions, 2, self.fused_channels)
        weights = torch.softmax(logits, dim=2)
        return weights[:, :, 0], weights[:, :, 1]

    # -- forward -----------------------------------------------------------------------------------

    def forward(self, lq: torch.Tensor, dissection: str | None = None,
                mask_bias: torch.Tensor | float | None = None) -> torch.Tensor:
        return self.analyze(lq, dissection=dissection, mask_bias=mask_bias).image

    def analyze(self, lq: torch.Tensor, dissection: str | None = None,
                mask_bias: torch.Tensor | float | None = None) -> PaniniOutputs:
        """Forward pass returning the image and the quantities the paper analyses.

        dissection: None (Eq. 7), "ife" (Eq. 12: F_GPB := 0, output Y_IFE) or "gpb" (Eq. 13: F_IFE := 0,
        output Y_GPB). mask_bias: scalar, (num_fusions,), (N, num_fusions) or (N, num_fusions, C) added
        to m1, clamped to [0, 1]; m2 = 1 - m1.
        """
        c = self.config
        if dissection not in DISSECTION_MODES:
            raise ValueError(f"dissection must be one of {DISSECTION_MODES}, got {dissection!r}")
        if c.fusion != "dafi" and (dissection is not None or mask_bias is not None):
            raise ValueError("dissection and mask_bias need DAFI masks; this model uses fusion='catconv'")
        self._check_input(lq)
        if self.channels_last:
            lq = lq.contiguous(memory_format=torch.channels_last)

        dr = self.degradation_representation(lq)
        m1 = m2 = None
        if dr is not None:
            m1, m2 = self.masks_from_dr(dr)
            if mask_bias is not None:
                m1 = (m1 + self._bias_tensor(mask_bias, m1)).clamp(0, 1)
                m2 = 1 - m1
        feats, latent = self.encoder(lq)

        def fuse(stage: int, out: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if stage >= c.num_fusions:
                return out, skip
            if m1 is None:
                return self.fusion_convs[stage](torch.cat([out, feats[stage]], 1)), skip
            gpb = m1[:, stage, :, None, None] * out
            ife = m2[:, stage, :, None, None] * self.fusion_convs[stage](feats[stage])
            if dissection == "ife":
                return ife, skip
            if dissection == "gpb":
                return gpb, skip
            return gpb + ife, skip

        image = self.generator(latent, hooks=SynthesisHooks(before_stage=fuse))
        theta = m1.mean(-1) if m1 is not None else None
        return PaniniOutputs(image, m1, theta, latent, dr)

    def _check_input(self, lq: torch.Tensor) -> None:
        size = self.config.in_size
        if not isinstance(lq, torch.Tensor) or lq.ndim != 4 or lq.shape[1] != 3:
            shape = tuple(lq.shape) if hasattr(lq, "shape") else type(lq).__name__
            raise BenchError(f"Panini-Net ({self.config.task}): expected an RGB batch (N, 3, H, W), got {shape}")
        if tuple(lq.shape[-2:]) != (size, size):
            raise BenchError(
                f"Panini-Net ({self.config.task}): expected {size}x{size} input, got {lq.shape[-2]}x{lq.shape[-1]}; "
                f"resize the LQ image to {size}x{size}"
            )
        if lq.is_cuda and torch.cuda.is_current_stream_capturing():
            return  # a CUDA graph is being captured: no host sync allowed (restore checked the input already)
        if not torch.isfinite(lq).all():
            raise BenchError(f"Panini-Net ({self.config.task}): the input contains NaN or infinite values")

    def _bias_tensor(self, bias: torch.Tensor | float, m1: torch.Tensor) -> torch.Tensor:
        b = torch.as_tensor(bias, dtype=m1.dtype, device=m1.device)
        n, k, _ = m1.shape
        if b.ndim == 1 and b.shape[0] == k:
            return b[None, :, None]
        if b.ndim == 2 and b.shape == (n, k):
            return b[:, :, None]
        if b.ndim in (0, 3) and (b.ndim == 0 or b.shape[1:] == m1.shape[1:]):
            return b
        raise ValueError(f"mask_bias must be a scalar, ({k},), ({n}, {k}) or {tuple(m1.shape)}; got {tuple(b.shape)}")


def _validate(c: PaniniConfig) -> None:
    if c.task not in ("mfr", "sr"):
        raise ValueError(f"task must be 'mfr' or 'sr', got {c.task!r}")
    if c.fusion not in ("dafi", "catconv"):
        raise ValueError(f"fusion must be 'dafi' or 'catconv', got {c.fusion!r}")
    if c.in_size >= c.out_size:
        raise ValueError(f"in_size ({c.in_size}) must be smaller than out_size ({c.out_size})")
    top = c.fused_sizes[-1]
    stages = (c.out_size.bit_length() - 1) - 2
    if c.num_fusions > stages:
        raise ValueError(f"{c.num_fusions} fusions need an output of at least {top * 2} px, got {c.out_size}")
    strided = len(c.stem_widths) - 1
    if c.in_size != top * 2**strided:
        raise ValueError(
            f"stem_widths {c.stem_widths} take {c.in_size} px down by {2**strided}x, but the largest fused "
            f"feature is {top} px: use {max(0, (c.in_size // top).bit_length() - 1) + 1} stem widths"
        )
    channels = c.generator_channels or default_channels(c.out_size, c.channel_multiplier)
    fused = {channels[s] for s in c.fused_sizes}
    if len(fused) != 1 or c.stem_widths[-1] not in fused:
        raise ValueError(
            f"the generator channels at the fused sizes {c.fused_sizes} must all equal the last stem width "
            f"{c.stem_widths[-1]}; got {sorted(fused)}"
        )


def parameter_counts(model: PaniniNet) -> dict[str, int]:
    """Parameters per top-level part (for Table 3's DAFI vs Cat-Conv comparison) and the total."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    if hasattr(model, "dr_constant"):
        counts["dr_constant"] = model.dr_constant.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
