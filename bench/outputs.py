"""Method -> outputs: LQ batches at the method's input size, restored PNGs at the GT size, weights identity.

The runner decides which images still need restoring (its output cache); this module feeds them to
the method and writes what comes back. Everything here is a plain function of its arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.experiment import Experiment, MethodConfig
from bench.io import read_rgb8, read_uint8_batch, to_uint8, write_png


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def resize(batch: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """`batch` at `size` with torch's `mode` (antialiased when shrinking); unchanged if sizes match or mode ''."""
    if not mode or tuple(batch.shape[-2:]) == tuple(size):
        return batch
    import torch.nn.functional as F

    if mode == "area":
        return F.interpolate(batch, size=size, mode="area").clamp_(0, 1)
    shrink = size[0] < batch.shape[-2]
    return F.interpolate(batch, size=size, mode=mode, align_corners=False, antialias=shrink).clamp_(0, 1)


def weights_hash(method) -> str:
    """sha256 over the loaded parameters and buffers (whatever file or seed they came from) and the protocol."""
    digest = hashlib.sha256()
    model = getattr(method, "model", None)
    if isinstance(model, torch.nn.Module):
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(getattr(method, "protocol", {}), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def load_lq(method, spec: MethodConfig, testset: Any, ids: list[str]) -> torch.Tensor:
    """The LQ batch of `ids` in [0, 1], at the method's input size when the experiment asks for resizing."""
    lq = read_uint8_batch([testset.lq(i) for i in ids]).float().div_(255)
    size = getattr(method.spec, "in_size", None)
    return resize(lq, (size, size), spec.resize_input) if size else lq


def restore_images(method, spec: MethodConfig, testset: Any, ids: list[str], folder: Path, batch_size: int,
                   progress: Callable) -> None:
    """Restore the LQ images `ids` of `testset` into `folder`/<id>.png, at the size of their GT."""
    if ids and getattr(method, "works_on_folders", False):
        method.restore_folder(testset.dir / "lq", folder, ids=ids, batch_size=batch_size)
        return
    gt_size = None
    for chunk in progress(list(batches(ids, batch_size)), f"{spec.name} on {testset.name}"):
        if gt_size is None:
            gt_size = read_rgb8(testset.gt(chunk[0])).shape[:2]
        out = resize(method.restore(load_lq(method, spec, testset, chunk)), tuple(gt_size), spec.resize_output)
        if tuple(out.shape[-2:]) != tuple(gt_size):
            raise BenchError(
                f"method '{spec.method}' returned {out.shape[-2]}x{out.shape[-1]} images but the GT of test "
                f"set '{testset.name}' is {gt_size[0]}x{gt_size[1]}; give it options that match the test set's "
                "output size (e.g. out_size) or use a test set of its task")
        for image_id, image in zip(chunk, to_uint8(out, getattr(method, "quantize", "round")), strict=True):
            write_png(folder / f"{image_id}.png", image)


def registry_files(method, options: dict) -> str:
    """The weights-cache files a method created without a weights path loaded, as absolute paths
    ("; "-joined; empty when it ran on seeded random weights or needs none)."""
    if "random_init_seed" in options:
        return ""
    from bench.weights import expected_path

    paths = (expected_path(name) for name in getattr(method.spec, "weights", ()))
    return "; ".join(str(path.resolve()) for path in paths if path.is_file())


def create_for_run(exp: Experiment, spec: MethodConfig, device: str):
    """The method of one experiment entry, its weights path and path-valued options (the method's
    `spec.path_options`, e.g. the folder method's `path`) resolved like every path of the experiment."""
    from bench.methods import create_method
    from bench.methods.registry import get_entry

    weights = str(exp.path(spec.weights, f"methods.{spec.name}.weights")) if spec.weights else None
    path_options = get_entry(spec.method).spec.path_options
    options = {key: str(exp.path(value, f"methods.{spec.name}.options.{key}"))
               if key in path_options and isinstance(value, str) else value for key, value in spec.options.items()}
    return create_method(spec.method, weights=weights, device=device, **options)
