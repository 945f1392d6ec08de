"""pSp super-resolution (pixel2style2pixel, CelebA-HQ SR model): an IR-SE50 feature pyramid maps the
256x256 input to 18 style codes, which are added to the average latent and decoded by the shared
StyleGAN2 (1024, config-f) with its stored noise maps (the official inference's randomize_noise=False).

The 64x64 LQ of the 16x task is brought to the encoder's 256 px as pSp's own inference does by
default: its test transform resizes the 8-bit PIL image with PIL bilinear before `ToTensor`
(`input_resize="pil-bilinear"`). `input_resize="torch-bilinear"` resizes the float tensor instead
(align_corners=False; differs by up to one grey level of the 256 px input). The choice is recorded.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.messages import pick
from bench.methods.baselines import BaselineMethod, baseline_family
from bench.methods.builder import build_model
from bench.methods.checkpoints import take_prefix
from bench.methods.stylegan2 import EqualLinear, StyleGAN2Generator, rosinality_to_ours

LAYOUT = "pSp checkpoint: {'state_dict': {encoder.*, decoder.*}, 'opts': {...}, 'latent_avg': (18, 512)}"


class SEModule(nn.Module):
    """Squeeze-and-excitation gate: global average -> 1x1 conv /r -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class BottleneckIRSE(nn.Module):
    """IR-SE unit: BN, conv3x3, PReLU, conv3x3 (stride), BN, SE; shortcut = subsample or 1x1 conv + BN."""

    def __init__(self, in_ch: int, depth: int, stride: int):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SEModule(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class GradualStyleBlock(nn.Module):
    """log2(spatial) stride-2 convs with LeakyReLU(0.01) down to 1x1, then an equalized linear."""

    def __init__(self, in_ch: int, out_ch: int, spatial: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(spatial.bit_length() - 1):
            layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class GradualStyleEncoder(nn.Module):
    """IR-SE backbone with taps at 1/4, 1/8, 1/16 of the input; coarse styles from the deepest map,
    middle and fine styles from top-down sums (bilinear, align_corners=True) with lateral 1x1 convs."""

    def __init__(self, num_styles: int = 18, in_size: int = 256, channels=(64, 128, 256, 512),
                 units=(3, 4, 14, 3), style_dim: int = 512, coarse: int = 3, middle: int = 7):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, channels[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(channels[0]), nn.PReLU(channels[0]))
        body, in_ch = [], channels[0]
        for depth, count in zip(channels, units, strict=True):
            body += [BottleneckIRSE(in_ch, depth, 2)] + [BottleneckIRSE(depth, depth, 1) for _ in range(count - 1)]
            in_ch = depth
        self.body = nn.Sequential(*body)
        self.taps = (sum(units[:2]) - 1, sum(units[:3]) - 1, sum(units) - 1)
        self.coarse, self.middle = coarse, middle
        spatial = (in_size // 16, in_size // 8, in_size // 4)
        self.styles = nn.ModuleList(
            GradualStyleBlock(channels[3], style_dim, spatial[0 if i < coarse else 1 if i < middle else 2])
            for i in range(num_styles)
        )
        self.latlayer1 = nn.Conv2d(channels[2], channels[3], 1)
        self.latlayer2 = nn.Conv2d(channels[1], channels[3], 1)

    @staticmethod
    def _upsample_add(x: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(x)
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                taps.append(x)
        c1, c2, c3 = taps
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        levels = [c3 if i < self.coarse else p2 if i < self.middle else p1 for i in range(len(self.styles))]
        return torch.stack([style(level) for style, level in zip(self.styles, levels, strict=True)], dim=1)


class PSP(nn.Module):
    """forward(x in [-1, 1], in_size x in_size) -> RGB (N, 3, out_size, out_size), unclamped."""

    def __init__(self, out_size: int = 1024, in_size: int = 256, style_dim: int = 512, channel_multiplier: int = 2,
                 narrow: float = 1.0, encoder_channels=(64, 128, 256, 512), encoder_units=(3, 4, 14, 3)):
        super().__init__()
        self.decoder = StyleGAN2Generator(out_size, style_dim, channel_multiplier=channel_multiplier, narrow=narrow)
        self.in_size = in_size
        self.encoder = GradualStyleEncoder(self.decoder.num_latents, in_size, encoder_channels, encoder_units,
                                           style_dim)
        self.register_buffer("latent_avg", torch.zeros(self.decoder.num_latents, style_dim))

    def forward(self, x: torch.Tensor, return_intermediates: bool = False):
        codes = self.encoder(x)
        latent = codes + self.latent_avg
        image = self.decoder(latent)
        return (image, {"codes": codes, "latent": latent}) if return_intermediates else image


def convert_psp(checkpoint: dict) -> dict:
    """Official pSp checkpoint -> ours: encoder keys as they are, decoder without FIR
    kernels, and `latent_avg` ((18, 512), or one (512,) vector broadcast to every style)."""
    if "state_dict" not in checkpoint or "latent_avg" not in checkpoint:
        found = ", ".join(list(map(str, checkpoint))[:5])
        raise BenchError(f"pSp weights: need 'state_dict' and 'latent_avg' entries (found {found}); expected {LAYOUT}")
    opts = checkpoint.get("opts") or {}
    if opts.get("encoder_type", "GradualStyleEncoder") != "GradualStyleEncoder" or opts.get("learn_in_w"):
        kind = f"encoder_type={opts.get('encoder_type')!r}, learn_in_w={opts.get('learn_in_w')}"
        raise BenchError(f"pSp weights: {kind}; only the GradualStyleEncoder (W+) models are supported")
    state = checkpoint["state_dict"]
    encoder = take_prefix(state, "encoder.")
    decoder = rosinality_to_ours(take_prefix(state, "decoder."))
    latent_avg = torch.as_tensor(checkpoint["latent_avg"])
    if latent_avg.ndim == 1:
        latent_avg = latent_avg.expand(18, -1).clone()
    return {f"encoder.{k}": v for k, v in encoder.items()} | {f"decoder.{k}": v for k, v in decoder.items()} | {
        "latent_avg": latent_avg
    }


# config="tiny": the same architecture at toy size (tests and timing on a CPU, seconds)
FAMILY = baseline_family("pSp", PSP, convert_psp, LAYOUT,
                         tiny={"out_size": 32, "in_size": 32, "style_dim": 16, "narrow": 1 / 16,
                                "encoder_channels": (16, 16, 32, 32), "encoder_units": (1, 1, 2, 1)})


INPUT_RESIZES = {
    "pil-bilinear": "the LQ as 8-bit RGB, resized with PIL bilinear (pSp's test transform), then to [-1, 1]",
    "torch-bilinear": "the float LQ in [-1, 1] resized with torch bilinear (align_corners=False)",
}


def pil_bilinear(lq: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, h, w) in [0, 1] -> (N, 3, size, size) in [0, 1]: each image at 8 bits through PIL bilinear."""
    from PIL import Image

    from bench.io import quantize_uint8

    pixels = quantize_uint8(lq).permute(0, 2, 3, 1).cpu().numpy()
    resized = [np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)) for image in pixels]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).to(lq.device, torch.float32).div_(255)


class PSPMethod(BaselineMethod):
    """pSp with its input resize as a recorded choice (`INPUT_RESIZES`)."""

    def __init__(self, spec, model, device, protocol, input_resize: str):
        super().__init__(spec, model, device, protocol, in_resize=model.in_size)
        self.input_resize = input_resize

    def to_native(self, lq: torch.Tensor) -> torch.Tensor:
        if self.input_resize == "pil-bilinear" and lq.shape[-1] != self.in_resize:
            lq = pil_bilinear(lq, self.in_resize)
        return super().to_native(lq)


def create_psp(spec, weights=None, device="cpu", config=None, random_init_seed: int | None = None,
               input_resize: str = "pil-bilinear"):
    """pSp CelebA-HQ super-resolution: 64x64 LQ -> bilinear 256 -> 1024, deterministic."""
    resize_text = pick(INPUT_RESIZES, input_resize, "input_resize", spec.name)
    model = build_model(FAMILY, config, weights, spec.weights[0], random_init_seed, device)
    in_size = model.in_size // 4  # the 16x task's LQ: 64 px for the 256-px encoder input
    spec = dataclasses.replace(spec, in_size=in_size, out_size=model.decoder.size)
    protocol = {
        "noise": "stored noise maps",
        "input": f"RGB [-1, 1]; LQ {in_size}px -> {model.in_size}px ({input_resize}: {resize_text})",
        "latent_avg": "added to the encoder codes",
    }
    return PSPMethod(spec, model, device, protocol, input_resize)
