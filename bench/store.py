"""The results store: atomic file writes, JSON lines and run provenance.

A run folder holds `run.json` (provenance, resolved config, status, failures, notes),
`results.jsonl` (one row per method x test set x metric [x condition]), `per_image.jsonl`,
`outputs/<method>/<testset_id>/<id>.png` and `scores/` (per method x test set, so a resumed run
does not score twice). Every file is written to a temporary name and renamed into place, so a
killed run never leaves a half-written file behind. Standard library only.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.io import atomic_write_text, dumps_json

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
PER_IMAGE_FILE = "per_image.jsonl"
PACKAGES = ("panini-bench", "torch", "torchvision", "numpy", "scipy", "opencv-python-headless", "pillow",
            "lpips", "pytorch-fid", "clean-fid", "pandas", "jinja2", "matplotlib")


def _json_default(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON (inf/nan become null with a `<key>_nonfinite` reason, see `bench.io.strict_json`)."""
    return dumps_json(value, indent=indent, default=_json_default)


def write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, dumps(value, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not valid JSON ({exc}); delete it and run again") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(dumps(row) + "\n" for row in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BenchError(f"{path}:{number}: not valid JSON ({exc})") from None
    return rows


def as_float(value) -> float:
    """A number read back from JSON; null (a non-finite value, its reason in `<key>_nonfinite`) is NaN."""
    return float(value) if value is not None else math.nan


def slug(text: str) -> str:
    """A folder-safe name for a method or test-set label (labels may hold any character)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned or "unnamed"


def git_commit(repo: Path | None = None) -> dict:
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: str) -> dict:
    info = {"requested": device, "platform": platform.platform(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}
    if "torch" in sys.modules or device.startswith("cuda"):
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            index = torch.device(device).index or 0
            info["gpu"] = torch.cuda.get_device_name(index)
            info["cuda"] = torch.version.cuda
    return info


def provenance(device: str) -> dict:
    return {"git": git_commit(), "packages": package_versions(), "device": device_info(device),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": sys.argv}
