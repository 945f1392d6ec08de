"""One model builder for every network family (after timm's `build_model_with_cfg` + `filter_fn`).

A `ModelFamily` says how to make the network from its settings, which settings the release uses
(`official`) and the toy ones for tests and CPU timing (`tiny`; the only place they are defined),
how seeded random weights are drawn, and how a released checkpoint becomes our layout (`filter`,
a pure function; the load itself is strict and names missing or unexpected keys). `build_model`
does the steps every method shares: choose the settings, random init or weights (a file, a loaded
dict, or the registry's cached release), strict load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError
from bench.methods.checkpoints import load_strict, read_checkpoint


def randomize_(model: nn.Module, seed: int) -> nn.Module:
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


def _equalized(model: nn.Module, name: str) -> bool:
    owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return hasattr(owner, "scale")


def redraw_init(make: Callable[[Any], nn.Module], settings: Any, seed: int) -> nn.Module:
    """`randomize_` after construction: every tensor from one explicit generator."""
    return randomize_(make(settings), seed)


def constructor_init(make: Callable[[Any], nn.Module], settings: Any, seed: int) -> nn.Module:
    """The modules' own initialisers under a fixed seed; the caller's global RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make(settings)


@dataclass(frozen=True)
class ModelFamily:
    """How to build one network family; see the module docstring."""

    name: str
    make: Callable[[Any], nn.Module]  # settings -> network
    official: Callable[[], Any]  # settings of the released network
    tiny: Callable[[], Any]  # the same code path at toy size
    settings_type: type  # what a custom `config` must be (dict of constructor arguments, a config class)
    filter: Callable[[dict, nn.Module, str], Mapping[str, Any]]  # (checkpoint, model, what) -> our state
    layout: str  # the checkpoint layout expected, for error messages
    random_init: Callable[[Callable, Any, int], nn.Module] = redraw_init


def choose_settings(family: ModelFamily, config: Any) -> tuple[Any, bool]:
    """(settings, whether they are the released ones) for config None/'official', 'tiny' or custom."""
    if config in (None, "official"):
        return family.official(), True
    if isinstance(config, str) and config == "tiny":
        return family.tiny(), False
    if isinstance(config, family.settings_type):
        return config, False
    kind = "a dict of architecture options" if family.settings_type is dict else f"a {family.settings_type.__name__}"
    raise BenchError(f"{family.name}: config must be 'official', 'tiny' or {kind}, got {config!r}")


def build_model(family: ModelFamily, config: Any = None, weights: Any = None, weights_name: str | None = None,
                random_init_seed: int | None = None, device: str | torch.device = "cpu",
                weights_label: str | None = None) -> nn.Module:
    """The network in eval mode on `device`: seeded random weights, or a checkpoint loaded strictly.

    weights: a checkpoint path, a loaded dict, or None for the registry's release `weights_name`
    (which only fits the official settings). weights_label: the file a loaded dict was read from, for errors.
    """
    settings, official = choose_settings(family, config)
    if random_init_seed is not None:
        if weights is not None:
            raise BenchError(f"{family.name}: pass either weights or random_init_seed, not both")
        return family.random_init(_checked(family), settings, random_init_seed).to(device).eval()
    model = _checked(family)(settings)
    if weights is None:
        if weights_name is None or not official:
            raise BenchError(f"{family.name}: no released checkpoint fits this configuration (the released weights "
                             "only fit config='official'); pass weights= (a checkpoint of this configuration) or "
                             "random_init_seed= for an untrained model")
        from bench.weights import resolve

        weights = resolve(weights_name)
    load_checkpoint(model, family, weights, weights_name, weights_label)
    return model.to(device).eval()


def load_checkpoint(model: nn.Module, family: ModelFamily, source: str | Path | Mapping[str, Any],
                    weights_name: str | None = None, label: str | None = None) -> nn.Module:
    """Read `source` (weights_only), convert it with the family's filter and load it strictly.
    `label`: where an already loaded `source` came from, so errors still name the file."""
    where = f" {label or source}" if label or isinstance(source, (str, Path)) else ""
    what = f"{family.name} weights{where} (expected {family.layout})"
    try:
        checkpoint = read_checkpoint(source, what)
    except BenchError as exc:
        if weights_name is None or "cannot read" not in str(exc):
            raise
        raise BenchError(f"{exc}. A truncated download reads like this: fetch it again with "
                         f"`bench weights fetch {weights_name}`") from exc
    return load_strict(model, family.filter(checkpoint, model, what), what)


def _checked(family: ModelFamily) -> Callable[[Any], nn.Module]:
    """`family.make` with bad constructor arguments turned into a BenchError naming them. Module
    constructors draw default inits from the global generator: a fork leaves the caller's state as it was."""
    def make(settings: Any) -> nn.Module:
        try:
            with torch.random.fork_rng(devices=[]):
                return family.make(settings)
        except (TypeError, ValueError) as exc:
            raise BenchError(f"{family.name}: bad architecture config {settings!r}: {exc}") from exc

    return make
