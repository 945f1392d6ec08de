"""The results store: run-folder file names and run provenance.

A run folder holds `run.json` (provenance, resolved config, status, failures, notes),
`results.jsonl` (one row per method x test set x metric [x condition]), `per_image.jsonl`,
`outputs/<method>/<testset_id>/<id>.png` and `scores/` (per method x test set, so a resumed run
does not score twice). Every file is written to a temporary name and renamed into place, so a
killed run never leaves a half-written file behind (bench.io writes them). Standard library only.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
PER_IMAGE_FILE = "per_image.jsonl"
PACKAGES = ("panini-bench", "torch", "torchvision", "numpy", "scipy", "opencv-python-headless", "pillow",
            "lpips", "pytorch-fid", "clean-fid", "pandas", "jinja2", "matplotlib")


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
