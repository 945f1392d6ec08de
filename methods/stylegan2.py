"""StyleGAN2 generator and discriminator in plain PyTorch (no compiled ops; CPU and GPU).

The layer math is that of rosinality's stylegan2-pytorch / MMGeneration (equalized learning rate
applied at run time, modulated convolutions with demodulation, FIR up/down-sampling, fused
bias + leaky ReLU written as ordinary ops). Our state_dict keys follow rosinality's names
(`style.*`, `input.input`, `conv1.conv.weight`, `convs.{k}.noise.weight`, `noises.noise_{n}`, ...);
the FIR kernels are constants of the architecture and are not stored. Foreign layouts are mapped
onto these keys by the pure functions at the end of this file (`mmgen_generator_to_ours`, ...).

Switches needed by the baselines: `resample="bilinear"` (GFP-GAN clean: bilinear x2 before a plain
3x3 modulated conv and a bilinear RGB skip), `noise_mode="concat"` (GPEN: the noise input is an
encoder feature concatenated to the activations, doubling the channels that follow) and
`SynthesisHooks` (Panini/GLEAN fusion before a stage, GFP-GAN SFT between the two convs of a stage,
capture of stage outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError

SQRT2 = math.sqrt(2.0)
DEFAULT_BLUR_KERNEL = (1, 3, 3, 1)


# --------------------------------------------------------------------------------------------------
# Native ops


def make_fir_kernel(taps: Sequence[float] = DEFAULT_BLUR_KERNEL) -> torch.Tensor:
    """The normalised 2-D FIR kernel outer(taps, taps) / sum (a 1-D input is made separable)."""
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with `kernel`, keep every `down`-th pixel.

    Same definition as the native branches of mmcv/rosinality/BasicSR (true convolution, i.e. the
    kernel is flipped; same padding on both axes). Written as one depthwise convolution: the native
    branches' (N*C, 1, H, W) single-channel convolution gives the same numbers here but is about 5x
    slower on CPU and needs a ~2 GB im2col buffer at 1024 px.
    """
    n, c, h, w = x.shape
    pad0, pad1 = pad
    out = x
    if up > 1:
        out = out.reshape(n, c, h, 1, w, 1)
        out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
        out = out.reshape(n, c, h * up, w * up)
    out = F.pad(out, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    if pad0 < 0 or pad1 < 0:
        out = out[:, :, max(-pad0, 0) : out.shape[2] - max(-pad1, 0), max(-pad0, 0) : out.shape[3] - max(-pad1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(out.dtype).expand(c, 1, *kernel.shape).contiguous()
    out = F.conv2d(out, weight, groups=c)
    if down > 1:
        out = out[:, :, ::down, ::down]
    return out


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2, scale: float = SQRT2,
    inplace: bool = False,
) -> torch.Tensor:
    """`leaky_relu(x + bias) * scale` with the bias broadcast over channel dim 1 (the fused op, unfused).

    inplace=True overwrites `x` (same arithmetic, bit-identical): for freshly computed activations, where
    it saves the allocation and page faults of full-size temporaries. Autograd-safe: the final scaling
    stays out of place while gradients are recorded.
    """
    if bias is not None:
        bias = bias.view(1, -1, *([1] * (x.ndim - 2)))
        x = x.add_(bias) if inplace else x + bias
    x = F.leaky_relu(x, negative_slope, inplace=inplace)
    return x.mul_(scale) if inplace and not torch.is_grad_enabled() else x * scale


# --------------------------------------------------------------------------------------------------
# Equalized-LR layers


class PixelNorm(nn.Module):
    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, leaky ReLU 0.2, gain sqrt(2). Key: `bias` (C,)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualLinear(nn.Module):
    """Linear layer with equalized LR: weight * lr_mul / sqrt(in), bias * lr_mul. Keys: `weight`, `bias`."""

    def __init__(
        self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
        activate: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalized LR (weight / sqrt(in*k*k)). Keys: `weight`, optional `bias`."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class Blur(nn.Module):
    """FIR filter with fixed padding (kernel is a non-persistent constant buffer)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps) * upsample_factor**2, persistent=False)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 FIR upsampling of the RGB skip (`fir`) or bilinear x2 (`bilinear`)."""

    def __init__(self, taps: Sequence[float], factor: int = 2, resample: str = "fir"):
        super().__init__()
        self.factor, self.resample = factor, resample
        self.register_buffer("kernel", make_fir_kernel(taps) * factor**2, persistent=False)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "bilinear":
            return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


# --------------------------------------------------------------------------------------------------
# Synthesis layers


class ModulatedConv2d(nn.Module):
    """Style-modulated conv. Keys: `weight` (1, out, in, k, k), `modulation.weight` (in, style), `modulation.bias`.

    `upsample=True`: `fir` = stride-2 transposed conv + blur; `bilinear` = bilinear x2 then a plain conv.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
        upsample: bool = False, blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, resample: str = "fir",
        eps: float = 1e-8,
    ):
        super().__init__()
        if resample not in ("fir", "bilinear"):
            raise ValueError(f"resample must be 'fir' or 'bilinear', got {resample!r}")
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.demodulate, self.upsample, self.resample, self.eps = demodulate, upsample, resample, eps
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        if upsample and resample == "fir":
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.modulation(style).view(n, 1, c, 1, 1)
        weight = self.weight * self.scale * s
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4], keepdim=True) + self.eps)
        weight = weight.view(n * self.out_ch, c, self.kernel_size, self.kernel_size)
        if self.upsample and self.resample == "fir":
            x = x.reshape(1, n * c, h, w)
            weight = weight.view(n, self.out_ch, c, self.kernel_size, self.kernel_size).transpose(1, 2)
            weight = weight.reshape(n * c, self.out_ch, self.kernel_size, self.kernel_size)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=n)
            out = out.view(n, self.out_ch, out.shape[2], out.shape[3])
            return self.blur(out)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            h, w = h * 2, w * 2
        out = F.conv2d(x.reshape(1, n * c, h, w), weight, padding=self.kernel_size // 2, groups=n)
        return out.view(n, self.out_ch, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    """`x + weight * noise` (`add`) or `cat([x, weight * noise])` (`concat`, GPEN). Key: `weight` (1,)."""

    def __init__(self, concat: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.concat = concat

    def forward(self, x: torch.Tensor, noise: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        if self.concat:
            return torch.cat([x, self.weight * noise.expand(x.shape[0], -1, -1, -1)], dim=1)
        return x.add_(self.weight * noise) if inplace else x + self.weight * noise


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU. Keys: `conv.*`, `noise.weight`, `activate.bias`."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
        blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, resample: str = "fir", noise_concat: bool = False,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, resample=resample)
        self.noise = NoiseInjection(concat=noise_concat)
        self.activate = FusedLeakyReLU(out_ch * (2 if noise_concat else 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # the conv output is ours alone and no backward needs it, so noise and activation work in place
        out = self.noise(self.conv(x, style), noise, inplace=True)
        return fused_leaky_relu(out, self.activate.bias, inplace=True)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation + bias (+ upsampled skip). Keys: `conv.*`, `bias` (1,3,1,1)."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, resample: str = "fir", out_ch: int = 3):
        super().__init__()
        self.upsample = Upsample(blur_kernel, resample=resample) if upsample else None
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


def default_channels(size: int, channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """Config-f channel table {resolution: channels} (GPEN's `narrow` scales every entry)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier,
            2048: 8 * channel_multiplier}
    return {res: int(ch * narrow) for res, ch in base.items() if res <= size}


def _check_size(size: int) -> int:
    log_size = int(math.log2(size)) if size > 0 else 0
    if size < 8 or 2**log_size != size:
        raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
    return log_size


# --------------------------------------------------------------------------------------------------
# Generator


@dataclass
class SynthesisHooks:
    """Optional callbacks into the synthesis loop; stage s (0-based) goes to resolution 8 * 2**s.

    before_stage(s, out, skip) -> (out, skip): before the up-conv of stage s (out is 4*2**s px).
    mid_stage(s, out) -> out: between the two convs of stage s.
    after_stage(s, out, skip) -> None: after the stage's ToRGB (capture only).
    """

    before_stage: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    mid_stage: Callable[[int, torch.Tensor], torch.Tensor] | None = None
    after_stage: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (config-f by default).

    forward(latent) takes W+ (N, num_latents, style_dim) or W (N, style_dim) and returns the RGB
    image (N, 3, size, size), unclamped. Noise comes from the stored buffers `noises.noise_{n}`
    unless a list is passed (entries may be None = stored buffer). `mapping(z)` is the MLP.
    """

    def __init__(
        self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
        channels: Mapping[int, int] | None = None, narrow: float = 1.0, lr_mlp: float = 0.01,
        blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, resample: str = "fir", noise_mode: str = "add",
        noise_buffers: bool = True, pixel_norm_eps: float = 1e-8,
    ):
        super().__init__()
        if noise_mode not in ("add", "concat"):
            raise ValueError(f"noise_mode must be 'add' or 'concat', got {noise_mode!r}")
        self.log_size = _check_size(size)
        self.size, self.style_dim, self.resample, self.noise_mode = size, style_dim, resample, noise_mode
        self.channels = dict(channels) if channels is not None else default_channels(size, channel_multiplier, narrow)
        missing = [2**i for i in range(2, self.log_size + 1) if 2**i not in self.channels]
        if missing:
            raise ValueError(f"channels has no entry for resolution(s) {missing}")
        concat = noise_mode == "concat"
        widen = 2 if concat else 1  # the concatenated noise doubles the channels after each styled conv

        self.style = nn.Sequential(
            PixelNorm(pixel_norm_eps),
            *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)],
        )
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel, resample=resample,
                                noise_concat=concat)
        self.to_rgb1 = ToRGB(ch[4] * widen, style_dim, upsample=False, resample=resample)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch * widen, out_ch, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, resample=resample, noise_concat=concat))
            self.convs.append(StyledConv(out_ch * widen, out_ch, 3, style_dim, blur_kernel=blur_kernel,
                                         resample=resample, noise_concat=concat))
            self.to_rgbs.append(ToRGB(out_ch * widen, style_dim, blur_kernel=blur_kernel, resample=resample))
            in_ch = out_ch
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.num_latents = self.log_size * 2 - 2
        self.noises = nn.Module()
        if noise_buffers:
            for n in range(self.num_layers):
                res = 2 ** ((n + 5) // 2)
                self.noises.register_buffer(f"noise_{n}", torch.randn(1, 1, res, res))

    @property
    def num_stages(self) -> int:
        return self.log_size - 2

    def noise_shape(self, n: int) -> tuple[int, int, int, int]:
        res = 2 ** ((n + 5) // 2)
        return (1, 1, res, res)

    def stored_noise(self) -> list[torch.Tensor]:
        if not hasattr(self.noises, "noise_0"):
            raise ValueError("this generator has no stored noise buffers (noise_buffers=False): pass noise")
        return [getattr(self.noises, f"noise_{n}") for n in range(self.num_layers)]

    def random_noise(self, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Fresh noise maps drawn from an explicit generator (for training / stochastic sampling)."""
        device = self.input.input.device
        return [torch.randn(batch, 1, *self.noise_shape(n)[2:], generator=generator, device=device)
                for n in range(self.num_layers)]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, style_dim) -> w (N, style_dim)."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.style_dim, generator=generator, device=self.input.input.device)
        return self.mapping(z).mean(0, keepdim=True)

    def _expand_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim == 2:
            latent = latent.unsqueeze(1).expand(-1, self.num_latents, -1)
        if latent.ndim != 3 or latent.shape[1] != self.num_latents or latent.shape[2] != self.style_dim:
            raise ValueError(
                f"latent must be (N, {self.style_dim}) or (N, {self.num_latents}, {self.style_dim}), "
                f"got {tuple(latent.shape)}"
            )
        return latent

    def forward(
        self, latent: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None,
        hooks: SynthesisHooks | None = None,
    ) -> torch.Tensor:
        latent = self._expand_latent(latent)
        if noise is None:
            noise = self.stored_noise()
        elif len(noise) != self.num_layers:
            raise ValueError(f"noise must have {self.num_layers} entries, got {len(noise)}")
        if any(n is None for n in noise):
            stored = self.stored_noise()
            noise = [stored[i] if n is None else n for i, n in enumerate(noise)]
        hooks = hooks or SynthesisHooks()

        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        for s in range(self.num_stages):
            up_conv, conv, to_rgb = self.convs[2 * s], self.convs[2 * s + 1], self.to_rgbs[s]
            if hooks.before_stage is not None:
                out, skip = hooks.before_stage(s, out, skip)
            out = up_conv(out, latent[:, 1 + 2 * s], noise[1 + 2 * s])
            if hooks.mid_stage is not None:
                out = hooks.mid_stage(s, out)
            out = conv(out, latent[:, 2 + 2 * s], noise[2 + 2 * s])
            skip = to_rgb(out, latent[:, 3 + 2 * s], skip)
            if hooks.after_stage is not None:
                hooks.after_stage(s, out, skip)
        return skip


# --------------------------------------------------------------------------------------------------
# Discriminator


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU]: rosinality's ConvLayer (same child indices)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        stride, padding = 1, kernel_size // 2
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, bias=False,
                              activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image (N, 3, size, size) -> logit (N, 1)."""

    def __init__(self, size: int, channel_multiplier: int = 2, channels: Mapping[int, int] | None = None,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR_KERNEL, stddev_group: int = 4, stddev_feat: int = 1):
        super().__init__()
        log_size = _check_size(size)
        ch = dict(channels) if channels is not None else default_channels(size, channel_multiplier)
        self.size = size
        blocks: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        in_ch = ch[size]
        for i in range(log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            blocks.append(ResBlock(in_ch, out_ch, blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*blocks)
        self.stddev_group, self.stddev_feat = stddev_group, stddev_feat
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activate=True), EqualLinear(ch[4], 1)
        )

    def minibatch_stddev(self, out: torch.Tensor) -> torch.Tensor:
        n, c, h, w = out.shape
        group = min(n, self.stddev_group)
        if n % group:
            raise ValueError(f"batch size {n} must be divisible by the stddev group {group}")
        std = out.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        return torch.cat([out, std.repeat(group, 1, h, w)], 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.final_conv(self.minibatch_stddev(self.convs(image)))
        return self.final_linear(out.flatten(1))


# --------------------------------------------------------------------------------------------------
# Checkpoint layouts -> our keys (pure functions on state_dicts)


def _check_fir_kernel(key: str, value: Any, taps: Sequence[float]) -> None:
    """Foreign checkpoints store the FIR kernels; we regenerate them, so refuse a non-standard one."""
    base = make_fir_kernel(taps)
    value = torch.as_tensor(value, dtype=torch.float32)
    if value.shape != base.shape or not any(torch.allclose(value, base * f, atol=1e-6) for f in (1, 4)):
        raise BenchError(
            f"checkpoint key {key}: FIR kernel {tuple(value.shape)} is not the standard {list(taps)} kernel; "
            "this StyleGAN2 implementation only supports that kernel"
        )


def _drop_kernels(state: Mapping[str, Any], taps: Sequence[float]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        if key.endswith(".kernel") and (".blur." in key or ".upsample." in key or key.split(".")[-2].isdigit()):
            _check_fir_kernel(key, value, taps)
            continue
        out[key] = value
    return out


def rosinality_to_ours(state: Mapping[str, Any], taps: Sequence[float] = DEFAULT_BLUR_KERNEL) -> dict[str, Any]:
    """rosinality layout (pSp `decoder.*`, GPEN `generator.*` after prefix removal, D): drop FIR kernels."""
    return _drop_kernels(state, taps)


_MMGEN_G_RULES = (
    (".conv.style_modulation.linear.weight_orig", ".conv.modulation.weight"),
    (".conv.style_modulation.bias", ".conv.modulation.bias"),
    (".conv.weight_orig", ".conv.weight"),
    (".noise_injector.weight", ".noise.weight"),
)


def mmgen_generator_to_ours(state: Mapping[str, Any], taps: Sequence[float] = DEFAULT_BLUR_KERNEL) -> dict[str, Any]:
    """MMGeneration/MMEditing `StyleGANv2Generator` keys (no prefix) -> our generator keys.

    Unknown keys are kept unchanged so that a strict load reports them.
    """
    out: dict[str, Any] = {}
    for key, value in _drop_kernels(state, taps).items():
        new = key
        if key.startswith("style_mapping."):
            new = "style." + key[len("style_mapping."):].replace(".linear.weight_orig", ".weight")
        elif key == "constant_input.input":
            new = "input.input"
        elif key.startswith("injected_noise_"):
            new = "noises.noise_" + key[len("injected_noise_"):]
        else:
            for old, rep in _MMGEN_G_RULES:
                if key.endswith(old):
                    new = key[: -len(old)] + rep
                    break
        out[new] = value
    return out


def mmgen_discriminator_to_ours(state: Mapping[str, Any],
                                taps: Sequence[float] = DEFAULT_BLUR_KERNEL) -> dict[str, Any]:
    """MMGeneration `StyleGAN2Discriminator` keys (no prefix) -> our discriminator keys."""
    out: dict[str, Any] = {}
    for key, value in _drop_kernels(state, taps).items():
        new = key.replace(".conv.weight_orig", ".weight").replace(".linear.weight_orig", ".weight")
        out[new] = value
    return out


def load_mmgen_checkpoint(
    module: StyleGAN2Generator | StyleGAN2Discriminator, source: Any, prefix: str | None = None
) -> StyleGAN2Generator | StyleGAN2Discriminator:
    """Load an MMGeneration StyleGAN2 checkpoint (e.g. `stylegan2-ffhq-1024`) into `module`, strictly.

    `source`: file path or loaded dict whose `state_dict` holds `generator_ema.*`, `generator.*` and
    `discriminator.*` entries. `prefix` defaults to `generator_ema.` for a generator (the EMA weights the
    official configs use) and `discriminator.` for a discriminator.
    """
    from bench.methods.checkpoints import load_strict, read_checkpoint, take_prefix

    is_generator = isinstance(module, StyleGAN2Generator)
    prefix = prefix or ("generator_ema." if is_generator else "discriminator.")
    what = "StyleGAN2 checkpoint" if isinstance(source, Mapping) else f"StyleGAN2 checkpoint {source}"
    checkpoint = read_checkpoint(source, what)
    state = take_prefix(checkpoint.get("state_dict", checkpoint), prefix)
    if not state:
        found = sorted({k.split(".")[0] + "." for k in checkpoint.get("state_dict", checkpoint)})
        raise BenchError(f"{what}: no '{prefix}*' entries (prefixes present: {', '.join(found) or 'none'})")
    remap = mmgen_generator_to_ours if is_generator else mmgen_discriminator_to_ours
    return load_strict(module, remap(state), f"{what} [{prefix}*]")
