"""GPEN-BFR-512 (`FullGenerator`): a strided FIR encoder whose features are the StyleGAN2 "noise".

Each encoder feature map is concatenated (times a learnt strength) to the activations of both
styled convs of its resolution, the shared StyleGAN2's `noise_mode="concat"`. The 4x4 features go
through a linear layer and the mapping MLP to one W for all layers; GPEN is the only baseline that
uses the mapping network. Deterministic: nothing random at inference. Its official inference
truncates the float result to 8 bits; that is the default here too (`quantize`, recorded).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError
from bench.io import QUANTIZE
from bench.messages import pick
from bench.methods.baselines import BaselineMethod, baseline_family, build_with_output_policy
from bench.methods.checkpoints import take_prefix
from bench.methods.stylegan2 import ConvLayer, EqualLinear, StyleGAN2Generator, rosinality_to_ours

LAYOUT = "GPEN FullGenerator file: plain state dict {generator.*, ecd0.*, ..., final_linear.0.*}"


class GPEN(nn.Module):
    """forward(x in [-1, 1], size x size) -> RGB (N, 3, size, size), unclamped."""

    def __init__(self, size: int = 512, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 narrow: float = 1.0):
        super().__init__()
        self.generator = StyleGAN2Generator(size, style_dim, n_mlp, channel_multiplier, narrow=narrow,
                                            noise_mode="concat", noise_buffers=False)
        ch = self.generator.channels
        log_size = self.generator.log_size
        self.num_encoders = log_size - 1
        self.ecd0 = nn.Sequential(ConvLayer(3, ch[size], 1))
        for k in range(1, self.num_encoders):
            res = 2 ** (log_size - k + 1)
            setattr(self, f"ecd{k}", nn.Sequential(ConvLayer(ch[res], ch[res // 2], 3, downsample=True)))
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, style_dim, activate=True))

    def forward(self, x: torch.Tensor, return_intermediates: bool = False):
        features = []
        for k in range(self.num_encoders):
            x = getattr(self, f"ecd{k}")(x)
            features.append(x)
        code = self.final_linear(x.flatten(1))
        w = self.generator.mapping(code)
        # conv1 takes the 4x4 features, both convs of a stage take the features of its resolution
        noise = [f for f in reversed(features) for _ in range(2)][1:]
        image = self.generator(w, noise=noise)
        return (image, {"code": code, "w": w}) if return_intermediates else image


def convert_gpen(checkpoint: dict) -> dict:
    """Official GPEN state dict (plain, rosinality names) -> ours: only the FIR kernel buffers go."""
    if "generator.input.input" not in checkpoint:
        found = ", ".join(list(map(str, checkpoint))[:5])
        hint = " (a training checkpoint: pass checkpoint['g_ema'])" if "g_ema" in checkpoint else ""
        raise BenchError(f"GPEN weights: no 'generator.input.input' key (found {found}){hint}; expected {LAYOUT}")
    generator = rosinality_to_ours(take_prefix(checkpoint, "generator."))
    rest = rosinality_to_ours({k: v for k, v in checkpoint.items() if not k.startswith("generator.")})
    return {f"generator.{k}": v for k, v in generator.items()} | rest


# config="tiny": the same architecture at toy size (tests and timing on a CPU, seconds)
FAMILY = baseline_family("GPEN-BFR", GPEN, convert_gpen, LAYOUT,
                         tiny={"size": 32, "style_dim": 16, "n_mlp": 2, "narrow": 1 / 16})


def create_gpen(spec, weights=None, device="cpu", output_policy: str = "bicubic", config=None,
                random_init_seed: int | None = None, quantize: str = "truncate"):
    """GPEN-BFR-512; `output_policy` brings its 512 output to the 1024 MFR ground truth.

    `quantize`: "truncate" (default) writes 8-bit outputs as GPEN's own `tensor2img` does
    (`astype(np.uint8)` after clipping); "round" is the rounding every other method uses.
    """
    quantize_text = pick(QUANTIZE, quantize, "quantize", spec.name)
    model, spec, out_resize, protocol = build_with_output_policy(
        FAMILY, spec, output_policy, lambda m: m.generator.size, config, weights, random_init_seed, device)
    protocol["noise"] = "none (encoder features)"
    protocol["quantize"] = f"{quantize}: {quantize_text}"
    method = BaselineMethod(spec, model, device, protocol, out_resize=out_resize)
    method.quantize = quantize
    return method
