"""GLEAN (MMEditing `GLEANStyleGANv2`, FFHQ 16x): RRDB encoder -> W+ and multi-scale features,
fused into the shared StyleGAN2 latent bank, whose stage outputs feed a pixel-shuffle decoder.

The output is the decoder branch; the bank's RGB skip (and `fusion_skip`) is computed as in the
official forward but never reaches the output. The bank runs with its stored noise maps.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError
from bench.methods.baselines import BaselineMethod, baseline_family
from bench.methods.builder import build_model
from bench.methods.checkpoints import take_prefix
from bench.methods.rrdb import RRDBExtractor
from bench.methods.stylegan2 import StyleGAN2Generator, SynthesisHooks, mmgen_generator_to_ours

LAYOUT = "MMEditing GLEAN checkpoint: {'state_dict': {generator.generator.*, generator.encoder.*, ...}, 'meta'}"


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


class PixelShufflePack(nn.Module):
    """3x3 conv to 4x the channels, then pixel shuffle x2 (no activation)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.upsample_conv = nn.Conv2d(in_ch, out_ch * 4, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(self.upsample_conv(x), 2)


class GLEAN(nn.Module):
    """forward(lq in [-1, 1], in_size x in_size) -> RGB (N, 3, out_size, out_size), unclamped."""

    def __init__(self, in_size: int = 64, out_size: int = 1024, style_dim: int = 512, channel_multiplier: int = 2,
                 narrow: float = 1.0, rrdb_channels: int = 64, num_rrdbs: int = 23, rrdb_growth: int = 32):
        super().__init__()
        if not 4 < in_size < out_size:
            raise ValueError(f"need 4 < in_size < out_size, got {in_size} and {out_size}")
        self.generator = StyleGAN2Generator(out_size, style_dim, channel_multiplier=channel_multiplier, narrow=narrow)
        ch = self.generator.channels
        self.in_size, self.style_dim = in_size, style_dim
        encoder_res = [2**i for i in range(in_size.bit_length() - 1, 1, -1)]  # in_size ... 4
        self.encoder = nn.ModuleList([nn.Sequential(
            RRDBExtractor(3, rrdb_channels, num_rrdbs, rrdb_growth),
            nn.Conv2d(rrdb_channels, ch[in_size], 3, 1, 1), _lrelu())])
        for res in encoder_res:
            if res > 4:
                block = nn.Sequential(nn.Conv2d(ch[res], ch[res // 2], 3, 2, 1), _lrelu(),
                                      nn.Conv2d(ch[res // 2], ch[res // 2], 3, 1, 1), _lrelu())
            else:
                block = nn.Sequential(nn.Conv2d(ch[4], ch[4], 3, 1, 1), _lrelu(), nn.Flatten(),
                                      nn.Linear(16 * ch[4], self.generator.num_latents * style_dim))
            self.encoder.append(block)
        self.fusion_out = nn.ModuleList(nn.Conv2d(2 * ch[r], ch[r], 3, 1, 1) for r in reversed(encoder_res))
        self.fusion_skip = nn.ModuleList(nn.Conv2d(ch[r] + 3, 3, 3, 1, 1) for r in reversed(encoder_res))
        self.decoder = nn.ModuleList()
        res = in_size
        while res < out_size:
            in_ch = ch[res] if res == in_size else 2 * ch[res]
            self.decoder.append(PixelShufflePack(in_ch, ch[res * 2]))
            res *= 2
        head = nn.Sequential(nn.Conv2d(2 * ch[out_size], 64, 3, 1, 1), _lrelu(), nn.Conv2d(64, 3, 3, 1, 1))
        self.decoder.append(head)

    def forward(self, lq: torch.Tensor, return_intermediates: bool = False):
        feat, features = lq, []
        for block in self.encoder:
            feat = block(feat)
            features.append(feat)
        latent = features[-1].view(lq.shape[0], -1, self.style_dim)
        fusion = features[-2::-1]  # 4x4 first, in_size last
        bank = []

        def fuse(stage: int, out: torch.Tensor, skip: torch.Tensor):
            if out.shape[2] > self.in_size:
                return out, skip
            out = self.fusion_out[stage](torch.cat([out, fusion[stage]], 1))
            skip = self.fusion_skip[stage](torch.cat([skip, fusion[stage]], 1))
            return out, skip

        def capture(stage: int, out: torch.Tensor, skip: torch.Tensor) -> None:
            if out.shape[2] > self.in_size:
                bank.append(out)

        self.generator(latent, hooks=SynthesisHooks(before_stage=fuse, after_stage=capture))
        hr = self.decoder[0](fusion[-1])
        for block, bank_feat in zip(self.decoder[1:], bank, strict=True):
            hr = block(torch.cat([hr, bank_feat], 1))
        return (hr, {"latent": latent}) if return_intermediates else hr


def convert_glean(checkpoint: dict) -> dict:
    """MMEditing GLEAN checkpoint -> ours: keep `generator.*` (the restorer's backbone), rename the
    latent bank from MMGeneration names, drop FIR kernels; discriminator/loss entries are skipped."""
    state = checkpoint.get("state_dict", checkpoint)
    backbone = take_prefix(state, "generator.")
    if not any(k.startswith("encoder.") for k in backbone):
        found = ", ".join(list(map(str, state))[:5])
        raise BenchError(f"GLEAN weights: no 'generator.encoder.*' entries (found {found}); expected {LAYOUT}")
    bank = mmgen_generator_to_ours(take_prefix(backbone, "generator."))
    rest = {k: v for k, v in backbone.items() if not k.startswith("generator.")}
    return {f"generator.{k}": v for k, v in bank.items()} | rest


# config="tiny": the same architecture at toy size (tests and timing on a CPU, seconds)
FAMILY = baseline_family("GLEAN", GLEAN, convert_glean, LAYOUT,
                         tiny={"in_size": 8, "out_size": 32, "style_dim": 16, "narrow": 1 / 16, "rrdb_channels": 8,
                                "num_rrdbs": 1, "rrdb_growth": 4})


def create_glean(spec, weights=None, device="cpu", config=None, random_init_seed: int | None = None):
    """GLEAN FFHQ 16x: 64x64 LQ -> 1024x1024, deterministic (stored noise)."""
    import dataclasses

    model = build_model(FAMILY, config, weights, spec.weights[0], random_init_seed, device)
    spec = dataclasses.replace(spec, in_size=model.in_size, out_size=model.generator.size)
    protocol = {"noise": "stored noise maps", "input": f"RGB [-1, 1], {model.in_size}x{model.in_size}"}
    return BaselineMethod(spec, model, device, protocol)
