"""The method registry: specs as plain data, factories imported only when a method is created.

Built-in methods are listed as data in `bench.methods.builtin.ENTRIES`
(`MethodEntry(spec, factory="module:function")`), so listing them imports no network code.
Third-party packages add entries through the entry-point group `bench.methods`; each entry point
must resolve to a `MethodEntry` (or a list of them) and should live in a module that imports
nothing heavy, so `bench methods` stays fast. A factory is called as
`factory(spec, weights=..., device=..., **options)` and returns a `Method`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:
    import torch

ENTRY_POINT_GROUP = "bench.methods"


@dataclass(frozen=True)
class MethodSpec:
    """What a method is: task, sizes, weights artefacts (names in the weights registry), licence."""

    name: str
    task: str  # "mfr", "sr16" or "any"
    in_size: int | None  # expected LQ side length; None = any
    out_size: int | None  # output side length; None = same as input
    weights: tuple[str, ...] = ()
    licence: str = "unknown"
    native_input: str = "RGB in [-1, 1], NCHW float32"
    description: str = ""


@dataclass(frozen=True)
class MethodEntry:
    spec: MethodSpec
    factory: str  # "module:function", imported on first use


@dataclass
class BrokenPlugin:
    """An entry point that failed to load: listed by `bench methods`, never fatal for the others."""

    name: str
    value: str
    error: str


class Method:
    """A ready-to-run restoration method.

    `restore(lq)` takes float32 RGB in [0, 1], shape (N, 3, in_size, in_size), and returns float32
    RGB in [0, 1] at the output size. `model` is the `nn.Module` working on the native input.
    Subclasses override `to_native` / `from_native` when their convention differs from [-1, 1].
    """

    def __init__(self, spec: MethodSpec, model: torch.nn.Module, device: str | torch.device = "cpu"):
        self.spec = spec
        self.device = device
        self.model = model.to(device).eval()

    def to_native(self, lq: torch.Tensor) -> torch.Tensor:
        return lq * 2 - 1

    def from_native(self, out: torch.Tensor) -> torch.Tensor:
        return (out + 1) / 2

    def check_input(self, lq: torch.Tensor) -> None:
        import torch

        if not isinstance(lq, torch.Tensor) or lq.ndim != 4 or lq.shape[1] != 3:
            shape = tuple(lq.shape) if hasattr(lq, "shape") else type(lq).__name__
            raise BenchError(f"{self.spec.name}: expected an RGB batch of shape (N, 3, H, W), got {shape}")
        size = self.spec.in_size
        if size is not None and tuple(lq.shape[-2:]) != (size, size):
            raise BenchError(
                f"{self.spec.name}: expected {size}x{size} input, got {lq.shape[-2]}x{lq.shape[-1]}; "
                f"resize the LQ images to {size}x{size} or use a test set of task '{self.spec.task}'"
            )
        if not torch.isfinite(lq).all():
            raise BenchError(f"{self.spec.name}: the input contains NaN or infinite values")

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        import torch

        self.check_input(lq)
        with torch.inference_mode():
            out = self.model(self.to_native(lq.to(self.device, torch.float32)))
            return self.from_native(out).clamp_(0, 1).float()


def _entry_points():
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def _load_plugins() -> tuple[list[MethodEntry], list[BrokenPlugin]]:
    entries, broken = [], []
    for ep in _entry_points():
        try:
            loaded = ep.load()
            loaded = loaded() if callable(loaded) and not isinstance(loaded, MethodEntry) else loaded
            items = [loaded] if isinstance(loaded, MethodEntry) else list(loaded)
            if not all(isinstance(item, MethodEntry) for item in items):
                raise TypeError("the entry point must give a MethodEntry or a list of them")
            entries.extend(items)
        except Exception as exc:  # a broken plugin must not take the others down
            broken.append(BrokenPlugin(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    return entries, broken


def list_methods(include_broken: bool = False) -> Any:
    """All registered entries (built-in first). With include_broken, also the plugins that failed."""
    from bench.methods.builtin import ENTRIES

    plugins, broken = _load_plugins()
    entries = list(ENTRIES) + plugins
    return (entries, broken) if include_broken else entries


def get_entry(name: str) -> MethodEntry:
    entries = list_methods()
    for entry in entries:
        if entry.spec.name == name:
            return entry
    known = ", ".join(sorted(e.spec.name for e in entries)) or "none"
    raise BenchError(f"unknown method '{name}'; registered methods: {known} (see `bench methods`)")


def create_method(name: str, weights: Any = None, device: str = "cpu", **options: Any) -> Method:
    """Build method `name`; `weights` is None (registry cache), a checkpoint path, or a loaded dict."""
    entry = get_entry(name)
    module_name, _, attr = entry.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(entry.spec, weights=weights, device=device, **options)
