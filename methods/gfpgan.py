"""GFP-GAN v1.2/v1.3/v1.4 (`GFPGANv1Clean`): U-Net encoder, W+ from a linear head, and the shared
StyleGAN2 decoder in `bilinear` mode with spatial feature transforms (SFT) between the two convs
of every stage.

The official "clean" checkpoints store pre-scaled weights; `convert_gfpgan_clean` maps them onto
the raw (equalized-LR) StyleGAN2 keys with the factors of baselines.md section 6.3, which is exact
up to float rounding. Official inference draws fresh decoder noise on every call; this adapter uses
the checkpoint's stored noise maps by default (deterministic) and random noise only when given an
explicit `torch.Generator`.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.methods.baselines import BaselineMethod, baseline_family, build_with_output_policy
from bench.methods.stylegan2 import StyleGAN2Generator, SynthesisHooks, default_channels

LAYOUT = "GFPGANv1Clean file: {'params_ema' or 'params': {conv_body_*, condition_*, stylegan_decoder.*, ...}}"


class ResBlock(nn.Module):
    """conv3x3 -> lrelu -> bilinear resize -> conv3x3 -> lrelu, plus a resized 1x1 skip (no /sqrt2)."""

    def __init__(self, in_ch: int, out_ch: int, scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.scale = scale

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv2(self._resize(F.leaky_relu(self.conv1(x), 0.2))), 0.2)
        return out + self.skip(self._resize(x))


def _condition(ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, 1, 1))


class GFPGANv1Clean(nn.Module):
    """forward(x in [-1, 1], size x size) -> RGB (N, 3, size, size), unclamped.

    The U-Net runs at half the decoder's width; its features at every resolution 8..size give the
    SFT scale and shift applied to the second half of the decoder channels (sft_half=True).
    """

    def __init__(self, size: int = 512, style_dim: int = 512, channel_multiplier: int = 2, narrow: float = 1.0):
        super().__init__()
        self.stylegan_decoder = StyleGAN2Generator(
            size, style_dim, n_mlp=8, channel_multiplier=channel_multiplier, narrow=narrow, resample="bilinear"
        )
        dec = self.stylegan_decoder
        unet = default_channels(size, channel_multiplier, narrow * 0.5)
        self.style_dim = style_dim
        self.conv_body_first = nn.Conv2d(3, unet[size], 1)
        self.conv_body_down = nn.ModuleList(
            ResBlock(unet[2**i], unet[2 ** (i - 1)], 0.5) for i in range(dec.log_size, 2, -1)
        )
        self.final_conv = nn.Conv2d(unet[4], unet[4], 3, 1, 1)
        self.final_linear = nn.Linear(unet[4] * 16, dec.num_latents * style_dim)
        self.conv_body_up = nn.ModuleList(
            ResBlock(unet[2 ** (i - 1)], unet[2**i], 2) for i in range(3, dec.log_size + 1)
        )
        self.condition_scale = nn.ModuleList(_condition(unet[2**i]) for i in range(3, dec.log_size + 1))
        self.condition_shift = nn.ModuleList(_condition(unet[2**i]) for i in range(3, dec.log_size + 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """W+ (N, num_latents, style_dim) and the SFT (scale, shift) pair of every decoder stage."""
        feat = F.leaky_relu(self.conv_body_first(x), 0.2)
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.insert(0, feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        latent = self.final_linear(feat.flatten(1)).view(x.shape[0], -1, self.style_dim)
        conditions = []
        for skip, up, scale, shift in zip(
            skips, self.conv_body_up, self.condition_scale, self.condition_shift, strict=True
        ):
            feat = up(feat + skip)
            conditions.append((scale(feat), shift(feat)))
        return latent, conditions

    def forward(self, x: torch.Tensor, noise=None, return_intermediates: bool = False):
        latent, conditions = self.encode(x)

        def sft(stage: int, out: torch.Tensor) -> torch.Tensor:
            scale, shift = conditions[stage]
            same, modulated = out.split(out.shape[1] // 2, dim=1)
            return torch.cat([same, modulated * scale + shift], dim=1)

        image = self.stylegan_decoder(latent, noise=noise, hooks=SynthesisHooks(mid_stage=sft))
        return (image, {"latent": latent}) if return_intermediates else image


def _clean_decoder_to_raw(key: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    """One `stylegan_decoder.*` entry of the clean layout -> (our key, raw equalized-LR value)."""
    if m := re.fullmatch(r"style_mlp\.(\d+)\.(weight|bias)", key):
        layer = (int(m[1]) + 1) // 2  # Sequential(NormStyleCode, (Linear, LeakyReLU) x 8): 1,3,5.. -> 1,2,3..
        in_dim = value.shape[-1] if m[2] == "weight" else None
        factor = 0.01 * math.sqrt(2) / math.sqrt(in_dim) if in_dim else 0.01 * math.sqrt(2)
        return f"style.{layer}.{m[2]}", value / factor
    if key == "constant_input.weight":
        return "input.input", value
    if m := re.fullmatch(r"noises\.noise(\d+)", key):
        return f"noises.noise_{m[1]}", value
    if m := re.fullmatch(r"(style_conv1|style_convs\.\d+|to_rgb1|to_rgbs\.\d+)\.(.+)", key):
        layer, rest = m[1], m[2]
        layer = layer.replace("style_conv1", "conv1").replace("style_convs", "convs")
        if rest == "modulated_conv.weight":  # (1, out, in, k, k) pre-scaled by 1/sqrt(in*k*k)
            return f"{layer}.conv.weight", value * math.sqrt(value[0, 0].numel())
        if rest == "modulated_conv.modulation.weight":  # nn.Linear vs EqualLinear(lr_mul=1)
            return f"{layer}.conv.modulation.weight", value * math.sqrt(value.shape[1])
        if rest == "modulated_conv.modulation.bias":
            return f"{layer}.conv.modulation.bias", value
        if layer.startswith("to_rgb") and rest == "bias":
            return f"{layer}.bias", value
        if rest == "weight":  # noise strength; the clean StyleConv works on sqrt(2)-scaled activations
            return f"{layer}.noise.weight", value / math.sqrt(2)
        if rest == "bias":  # (1, C, 1, 1) added before a plain leaky ReLU
            return f"{layer}.activate.bias", value.flatten() / math.sqrt(2)
    raise BenchError(f"GFP-GAN weights: unknown decoder key stylegan_decoder.{key}; expected {LAYOUT}")


def convert_gfpgan_clean(checkpoint: dict) -> dict:
    """Official GFPGANv1Clean checkpoint -> our state dict (drops only the unused `toRGB.*` heads)."""
    if "params_ema" in checkpoint:
        state = checkpoint["params_ema"]
    elif "params" in checkpoint:
        state = checkpoint["params"]
    else:
        keys = ", ".join(list(map(str, checkpoint))[:5])
        raise BenchError(f"GFP-GAN weights: no 'params_ema' or 'params' entry (found {keys}); expected {LAYOUT}")
    out = {}
    for key, value in state.items():
        if key.startswith("toRGB."):
            continue  # intermediate RGB heads, only used with return_rgb=True (training)
        if key.startswith("stylegan_decoder."):
            new, value = _clean_decoder_to_raw(key[len("stylegan_decoder.") :], value)
            out[f"stylegan_decoder.{new}"] = value
        else:
            out[key] = value
    return out


class GFPGANMethod(BaselineMethod):
    def __init__(self, *args, noise_generator: torch.Generator | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.noise_generator = noise_generator

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_generator is None:
            return self.model(x)
        decoder, g = self.model.stylegan_decoder, self.noise_generator
        noise = [
            torch.randn((x.shape[0], *decoder.noise_shape(n)[1:]), generator=g, device=g.device).to(x.device)
            for n in range(decoder.num_layers)
        ]
        return self.model(x, noise=noise)


# config="tiny": the same architecture at toy size (tests and timing on a CPU, seconds)
FAMILY = baseline_family("GFP-GAN", GFPGANv1Clean, convert_gfpgan_clean, LAYOUT,
                         tiny={"size": 32, "style_dim": 16, "narrow": 1 / 16})


def create_gfpgan(
    spec, weights=None, device="cpu", output_policy: str = "bicubic", noise_generator=None,
    config=None, random_init_seed: int | None = None,
):
    """GFP-GAN v1.3 / v1.4. `noise_generator`: fresh decoder noise per call (the official behaviour)."""
    if noise_generator is not None and not isinstance(noise_generator, torch.Generator):
        kind = type(noise_generator).__name__
        raise BenchError(f"{spec.name}: noise_generator must be a torch.Generator, got {kind}")
    model, spec, out_resize, protocol = build_with_output_policy(
        FAMILY, spec, output_policy, lambda m: m.stylegan_decoder.size, config, weights, random_init_seed, device)
    protocol["noise"] = "stored noise maps" if noise_generator is None else "random per call (explicit generator)"
    return GFPGANMethod(spec, model, device, protocol, out_resize=out_resize, noise_generator=noise_generator)
