"""Generic adapters: plain resizing baselines and methods whose results are made elsewhere.

* `bicubic` / `identity`: reference points every table needs (no weights).
* `folder`: finished results in a folder (e.g. the official Panini outputs), matched by file stem.
* `command`: an external program run once per test set as `... {input_dir} {output_dir}`, for
  methods that live in another environment (other Python, other framework, a container).
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.io import find_image, list_ids, read_batch, read_image, write_png
from bench.methods.registry import Method, MethodSpec


class Resize(torch.nn.Module):
    """Bicubic resize to a fixed square size (antialiased when shrinking)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        shrink = x.shape[-1] > self.size
        return F.interpolate(
            x, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=shrink
        )


def _check_size(name: str, value, option: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BenchError(f"{name}: option '{option}' must be a positive integer, got {value!r}")
    return value


def create_bicubic(spec: MethodSpec, weights=None, device="cpu", out_size: int | None = None) -> Method:
    """Bicubic upsampling of the LQ image to `out_size` (default: the spec's, 1024)."""
    if weights is not None:
        raise BenchError(f"{spec.name}: takes no weights, got {weights!r}")
    size = _check_size(spec.name, out_size, "out_size") or spec.out_size
    spec = dataclasses.replace(spec, out_size=size)
    return Method(spec, Resize(size), device, protocol={"resize": "bicubic a=-0.75, align_corners=False"})


def create_identity(spec: MethodSpec, weights=None, device="cpu") -> Method:
    """The LQ image itself (same size): the floor of every metric."""
    if weights is not None:
        raise BenchError(f"{spec.name}: takes no weights, got {weights!r}")
    protocol = {"output": "the LQ unchanged: score it against the GT resized to the LQ size"}
    return Method(spec, torch.nn.Identity(), device, protocol=protocol)


class FolderMethod(Method):
    """Results produced elsewhere: `path/<id>.<png|jpg|...>` for each test-set id."""

    works_on_folders = True

    def __init__(self, spec: MethodSpec, path: Path, device="cpu"):
        super().__init__(spec, None, device, {"source": str(path)})  # no network: the results already exist
        self.path = path

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        raise BenchError(
            f"{self.spec.name}: results come from the folder {self.path} and are matched by file name; "
            "call restore_folder(lq_dir, out_dir, ids) (the runner does) instead of restore(tensor)"
        )

    def restore_folder(self, lq_dir, out_dir, ids=None, batch_size: int = 1) -> list[str]:
        ids = list_ids(lq_dir) if ids is None else list(ids)
        missing = [i for i in ids if not any(self.path.glob(f"{i}.*"))]
        if missing:
            shown = ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")
            raise BenchError(f"{self.path}: no result for {len(missing)} of {len(ids)} test images ({shown})")
        for image_id in ids:
            target = Path(out_dir) / f"{image_id}.png"
            if target.exists():
                continue
            image = read_image(find_image(self.path, image_id))
            size = self.spec.out_size
            if size is not None and tuple(image.shape[-2:]) != (size, size):
                raise BenchError(
                    f"{find_image(self.path, image_id)}: expected {size}x{size}, got "
                    f"{image.shape[-2]}x{image.shape[-1]}; pass out_size=None to accept any size"
                )
            write_png(target, image)
        return ids


def create_folder(
    spec: MethodSpec, weights=None, device="cpu", path=None, out_size: int | None = None
) -> Method:
    """`path`: folder of finished results; `out_size`: the side length every result must have."""
    if weights is not None:
        raise BenchError(f"{spec.name}: takes no weights (pass the results folder as path=...)")
    if path is None:
        raise BenchError(
            f"{spec.name}: needs the option path=<folder of results named like the test set ids>"
        )
    folder = Path(path)
    if not folder.is_dir():
        raise BenchError(f"{folder}: results folder not found (option 'path' of method '{spec.name}')")
    spec = dataclasses.replace(spec, out_size=_check_size(spec.name, out_size, "out_size"))
    return FolderMethod(spec, folder, device)


class CommandMethod(Method):
    """An external program: `template` with `{input_dir}` and `{output_dir}`, run per test set."""

    works_on_folders = True

    def __init__(self, spec: MethodSpec, template: str, timeout: float | None, device="cpu"):
        super().__init__(spec, None, device, {"command": template})  # the network lives in the external program
        self.template = template
        self.timeout = timeout

    def _run(self, input_dir: Path, output_dir: Path) -> None:
        argv = [
            part.format(input_dir=input_dir, output_dir=output_dir) for part in shlex.split(self.template)
        ]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError as exc:
            raise BenchError(
                f"{self.spec.name}: command not found: {argv[0]} (template {self.template!r})"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise BenchError(
                f"{self.spec.name}: command timed out after {self.timeout} s: {self.template!r}"
            ) from exc
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip()[-500:]
            raise BenchError(f"{self.spec.name}: command exited with status {result.returncode}: {tail}")

    def _collect(self, produced: Path, ids: list[str]) -> None:
        missing = [i for i in ids if not any(produced.glob(f"{i}.*"))]
        if missing:
            shown = ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")
            raise BenchError(
                f"{self.spec.name}: the command wrote no output for {len(missing)} of {len(ids)} images "
                f"({shown}); it must write {{output_dir}}/<id>.png for every {{input_dir}}/<id>.png"
            )

    def _check_size(self, image: torch.Tensor, source) -> None:
        size = self.spec.out_size
        if size is not None and tuple(image.shape[-2:]) != (size, size):
            raise BenchError(
                f"{source}: expected a {size}x{size} output, got {image.shape[-2]}x{image.shape[-1]}"
            )

    def restore_folder(self, lq_dir, out_dir, ids=None, batch_size: int = 1) -> list[str]:
        ids = list_ids(lq_dir) if ids is None else list(ids)
        out_dir = Path(out_dir)
        if all((out_dir / f"{i}.png").exists() for i in ids):
            return ids  # resumed: already done
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".command-", dir=out_dir) as tmp:
            self._run(Path(lq_dir).resolve(), Path(tmp))
            self._collect(Path(tmp), ids)
            for image_id in ids:
                source = find_image(tmp, image_id)
                image = read_image(source)
                self._check_size(image, source)
                write_png(out_dir / f"{image_id}.png", image)
        return ids

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        """Round-trips the batch through 8-bit PNG files and the external command."""
        self.check_input(lq)
        with tempfile.TemporaryDirectory(prefix="bench-command-") as tmp:
            input_dir, output_dir = Path(tmp, "in"), Path(tmp, "out")
            output_dir.mkdir()
            ids = [f"{i:05d}" for i in range(lq.shape[0])]
            for image_id, image in zip(ids, lq, strict=False):
                write_png(input_dir / f"{image_id}.png", image)
            self._run(input_dir, output_dir)
            self._collect(output_dir, ids)
            out = read_batch(output_dir, ids)
            self._check_size(out, output_dir)
            return out


def create_command(
    spec: MethodSpec,
    weights=None,
    device="cpu",
    template=None,
    timeout: float | None = None,
    out_size: int | None = None,
) -> Method:
    """`template`: e.g. "conda run -n gfpgan python infer.py -i {input_dir} -o {output_dir}"."""
    if weights is not None:
        raise BenchError(f"{spec.name}: takes no weights (the external command loads its own)")
    if not template or "{input_dir}" not in template or "{output_dir}" not in template:
        raise BenchError(
            f'{spec.name}: needs the option template="cmd {{input_dir}} {{output_dir}}", got {template!r}'
        )
    if shutil.which(shlex.split(template)[0]) is None:
        raise BenchError(
            f"{spec.name}: command not found: {shlex.split(template)[0]} (template {template!r})"
        )
    spec = dataclasses.replace(spec, out_size=_check_size(spec.name, out_size, "out_size"))
    return CommandMethod(spec, template, timeout, device)
