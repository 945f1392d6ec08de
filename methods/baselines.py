"""What the four baseline adapters share: their ModelFamily shape, the restore wrapper, output policies.

An adapter module (gfpgan, gpen, glean, psp) holds the network, a pure converter from the official
checkpoint layout to the network's own keys, its `FAMILY` (bench.methods.builder) and a `create_*`
factory built from these pieces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.messages import pick
from bench.methods.builder import ModelFamily, build_model
from bench.methods.registry import Method, MethodSpec

# How a 512-px result meets the 1024-px MFR ground truth (Table 1 is at 1024; the paper does not say).
OUTPUT_POLICIES = {
    "bicubic": "512 output upsampled x2 (bicubic, a=-0.75) and scored against the 1024 GT",
    "downsample-gt": "512 output scored against the GT downsampled to 512 (bicubic, antialiased)",
}


def baseline_family(name: str, network: type[nn.Module], convert: Callable[[dict], dict], layout: str,
                    tiny: dict) -> ModelFamily:
    """A baseline's ModelFamily: constructor keyword arguments as settings ({} = the released network,
    `tiny` = the same architecture at toy size), the pure official-layout converter as checkpoint filter,
    and seeded weights redrawn from one explicit generator."""
    return ModelFamily(name, make=lambda arch: network(**arch), official=dict, tiny=lambda: dict(tiny),
                       settings_type=dict, filter=lambda checkpoint, model, what: convert(checkpoint), layout=layout)


class BaselineMethod(Method):
    """A baseline network wrapped for `restore`: native [-1, 1] in/out, optional resizes around it.

    `in_resize`: side length the LQ is bilinearly resized to before the network (pSp's 256 input).
    `out_resize`: side length the clamped [0, 1] result is bicubically resized to (MFR 512 -> 1024).
    """

    def __init__(self, spec, model, device, protocol, in_resize=None, out_resize=None):
        super().__init__(spec, model, device, protocol)
        self.in_resize, self.out_resize = in_resize, out_resize

    def to_native(self, lq: torch.Tensor) -> torch.Tensor:
        x = lq * 2 - 1
        if self.in_resize is not None and x.shape[-1] != self.in_resize:
            x = F.interpolate(x, size=(self.in_resize, self.in_resize), mode="bilinear", align_corners=False)
        return x

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        self.check_input(lq)
        with torch.inference_mode():
            out = self.from_native(self.forward_native(self.to_native(lq.to(self.device, torch.float32))))
            out = out.clamp_(0, 1)
            if self.out_resize is not None and out.shape[-1] != self.out_resize:
                size = (self.out_resize, self.out_resize)
                out = F.interpolate(out, size=size, mode="bicubic", align_corners=False).clamp_(0, 1)
            return out.float()


def build_with_output_policy(family: ModelFamily, spec: MethodSpec, output_policy: str,
                             native_size: Callable[[nn.Module], int], config, weights, random_init_seed,
                             device) -> tuple[nn.Module, MethodSpec, int | None, dict]:
    """Build an MFR baseline with a native_size output (512) for a GT twice that size (1024): the model,
    the spec as restored, the side length to resize the output to (None = keep) and the protocol."""
    policy_text = pick(OUTPUT_POLICIES, output_policy, "output_policy", spec.name)
    model = build_model(family, config, weights, spec.weights[0], random_init_seed, device)
    native = native_size(model)
    protocol = {"output_policy": output_policy, "output_policy_text": policy_text,
                "input": f"RGB [-1, 1], {native}x{native}"}
    if output_policy == "downsample-gt":
        protocol["eval_size"] = native
        return model, dataclasses.replace(spec, in_size=native, out_size=native), None, protocol
    return model, dataclasses.replace(spec, in_size=native, out_size=2 * native), 2 * native, protocol
