"""What the four baseline adapters share: weights lookup, random test weights, output policies.

An adapter module (gfpgan, gpen, glean, psp) holds the network, a pure converter from the official
checkpoint layout to the network's own keys, and a `create_*` factory built from these pieces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.methods.checkpoints import load_strict, read_checkpoint
from bench.methods.registry import Method, MethodSpec

# How a 512-px result meets the 1024-px MFR ground truth (Table 1 is at 1024; the paper does not say).
OUTPUT_POLICIES = {
    "bicubic": "512 output upsampled x2 (bicubic, a=-0.75) and scored against the 1024 GT",
    "downsample-gt": "512 output scored against the GT downsampled to 512 (bicubic, antialiased)",
}


def open_weights(spec: MethodSpec, weights: Any) -> dict:
    """The official checkpoint as a dict: `weights` is a path, a loaded dict, or None (registry cache)."""
    if weights is None:
        from bench.weights import resolve

        weights = resolve(spec.weights[0])
    try:
        return read_checkpoint(weights, what=f"{spec.name} weights")
    except BenchError as exc:
        if "cannot read" not in str(exc):
            raise
        raise BenchError(f"{exc}. A truncated download reads like this: fetch it again with "
                         f"`bench weights fetch {spec.weights[0]}`") from exc


def randomize_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-draw every parameter and buffer from an explicit generator (random_init_seed=, tests/timing).

    Weights get N(0, 1) / sqrt(fan-in) for plain layers; equalized-LR layers scale at run time, so
    N(0, 1) is their natural init. Biases start at 0 except modulation biases (1). Not a trained model.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                continue
            fresh = torch.randn(tensor.shape, generator=generator)
            if name.endswith("bias"):
                fresh = torch.ones_like(fresh) if "modulation" in name else fresh * 0.01
            elif name.endswith("running_var"):
                fresh = fresh.abs() + 0.5
            elif tensor.ndim in (2, 4) and not _equalized(model, name):
                fresh = fresh / max(1, tensor[0].numel()) ** 0.5
            tensor.copy_(fresh)
    return model


def _equalized(model: torch.nn.Module, name: str) -> bool:
    owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return hasattr(owner, "scale")


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


def build(
    spec: MethodSpec,
    make_model: Callable[..., torch.nn.Module],
    convert: Callable[[dict], dict],
    layout: str,
    weights: Any,
    config: str | dict | None,
    tiny: dict,
    random_init_seed: int | None,
) -> torch.nn.Module:
    """Construct the network and load converted official weights (the options every adapter shares).

    config: None / "official" (the released architecture), "tiny" (`tiny`, for tests and timing) or
    a dict of constructor arguments. random_init_seed: seeded random weights instead of a checkpoint
    (the same option names as the Panini-Net methods).
    """
    if config in (None, "official"):
        arch = {}
    elif config == "tiny":
        arch = tiny
    elif isinstance(config, dict):
        arch = config
    else:
        raise BenchError(f"{spec.name}: config must be 'official', 'tiny' or a dict of architecture options, "
                         f"got {config!r}")
    try:
        model = make_model(**arch)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{spec.name}: bad architecture config {arch!r}: {exc}") from exc
    if random_init_seed is not None:
        if weights is not None:
            raise BenchError(f"{spec.name}: pass either weights or random_init_seed, not both")
        return randomize_(model, random_init_seed)
    if arch and weights is None:
        raise BenchError(f"{spec.name}: the released weights only fit config='official'; pass weights= "
                         "(a checkpoint of this configuration) or random_init_seed=")
    checkpoint = open_weights(spec, weights)
    load_strict(model, convert(checkpoint), what=f"{spec.name} weights (expected {layout})")
    return model


def apply_output_policy(spec: MethodSpec, policy: str, native_size: int) -> tuple[MethodSpec, int | None, dict]:
    """MFR methods with a native_size output (512) for a GT twice that size (1024): the spec as
    restored, the side length to resize the output to (None = keep) and the protocol entry."""
    if policy not in OUTPUT_POLICIES:
        raise BenchError(f"{spec.name}: unknown output_policy {policy!r}; choose one of {sorted(OUTPUT_POLICIES)}")
    protocol = {"output_policy": policy, "output_policy_text": OUTPUT_POLICIES[policy]}
    if policy == "downsample-gt":
        protocol["eval_size"] = native_size
        return dataclasses.replace(spec, in_size=native_size, out_size=native_size), None, protocol
    return dataclasses.replace(spec, in_size=native_size, out_size=2 * native_size), 2 * native_size, protocol
