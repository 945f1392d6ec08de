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
import inspect
from dataclasses import dataclass
from pathlib import Path
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
    path_options: tuple[str, ...] = ()  # options that name files or folders (resolved like experiment paths)


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
    RGB in [0, 1] at the output size. `model` is the `nn.Module` working on the native input;
    `forward_native` runs it, in half precision and/or from a CUDA graph once `enable_fast_inference`
    (bench.methods.fast_inference) has been applied (the model's weights then have that dtype).
    Subclasses override `to_native` / `from_native` when their convention differs from [-1, 1].
    `protocol` records every choice that changes the numbers (noise mode, resize policy, ...): the
    runner stores it next to the results. `quantize` is how results become 8-bit files ("round" or
    the official code's "truncate"). Methods whose results only exist as files (`folder`,
    `command`) set `works_on_folders` and implement `restore_folder`.
    """

    works_on_folders = False
    quantize = "round"  # float -> 8-bit rule for written outputs, a key of bench.io.QUANTIZE
    fast_forward = None  # set by bench.methods.fast_inference.enable_fast_inference (half precision, CUDA graphs)

    def __init__(self, spec: MethodSpec, model: torch.nn.Module | None, device: str | torch.device = "cpu",
                 protocol: dict | None = None):
        self.spec = spec
        self.device = device
        self.model = model.to(device).eval() if model is not None else None  # None: results come as files
        self.protocol = dict(protocol or {})

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

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        """The model on a native float32 batch, through the fast-inference runner when one is enabled."""
        return self.model(x) if self.fast_forward is None else self.fast_forward(x)

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        import torch

        self.check_input(lq)
        with torch.inference_mode():
            out = self.forward_native(self.to_native(lq.to(self.device, torch.float32)))
            return self.from_native(out).clamp_(0, 1).float()

    def restore_folder(self, lq_dir, out_dir, ids=None, batch_size: int = 1) -> list[str]:
        """Restore `lq_dir/<id>.png` into `out_dir/<id>.png` (8-bit RGB); existing outputs are kept.

        Returns the ids written or found. Writes are atomic, so an interrupted call resumes.
        """
        from bench.io import list_ids, read_batch, write_png

        ids = list_ids(lq_dir) if ids is None else list(ids)
        todo = [i for i in ids if not (Path(out_dir) / f"{i}.png").exists()]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            out = self.restore(read_batch(lq_dir, chunk))
            for image_id, image in zip(chunk, out, strict=False):
                write_png(Path(out_dir) / f"{image_id}.png", image, self.quantize)
        return ids


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
    """All registered entries (built-in first). With include_broken, also the plugins that failed.

    A plugin entry whose name is already taken is not registered; it is reported as broken.
    """
    from bench.methods.builtin import ENTRIES

    plugins, broken = _load_plugins()
    entries = list(ENTRIES)
    taken = {entry.spec.name for entry in entries}
    for entry in plugins:
        if entry.spec.name in taken:
            reason = "a method with this name is already registered"
            broken.append(BrokenPlugin(entry.spec.name, entry.factory, reason))
            continue
        taken.add(entry.spec.name)
        entries.append(entry)
    return (entries, broken) if include_broken else entries


def get_entry(name: str) -> MethodEntry:
    entries, broken = list_methods(include_broken=True)
    for entry in entries:
        if entry.spec.name == name:
            return entry
    for plugin in broken:
        if plugin.name == name:
            raise BenchError(f"method plugin '{name}' ({plugin.value}) failed to load: {plugin.error}")
    known = ", ".join(sorted(e.spec.name for e in entries)) or "none"
    raise BenchError(f"unknown method '{name}'; registered methods: {known} (see `bench methods`)")


def create_method(name: str, weights: Any = None, device: str = "cpu", **options: Any) -> Method:
    """Build method `name`; `weights` is None (registry cache), a checkpoint path, or a loaded dict."""
    entry = get_entry(name)
    module_name, _, attr = entry.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BenchError(f"method '{name}': cannot import its factory '{entry.factory}': {exc}") from exc
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            known = ", ".join(sorted(set(accepted) - {"spec", "weights", "device"})) or "none"
            raise BenchError(f"method '{name}': unknown option(s) {', '.join(unknown)}; known options: {known}")
    method = factory(entry.spec, weights=weights, device=device, **options)
    if not isinstance(method, Method):
        kind = type(method).__name__
        raise BenchError(f"method '{name}': factory '{entry.factory}' returned {kind}, not a Method")
    return method
