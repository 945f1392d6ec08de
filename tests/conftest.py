"""Shared test fixtures: paths to ../shared (skipped with a reason where it is absent)."""

from __future__ import annotations

import contextlib
import os
import shutil

# One BLAS/OpenMP thread per test process (and the CLI subprocesses, which inherit it), so timings and
# results are stable on 2 cores. Set here, at conftest import, because torch reads it once when it loads.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

from pathlib import Path  # noqa: E402 - after the thread settings on purpose

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PANINI_BENCH_SHARED", REPO.parent / "shared"))


@pytest.fixture
def test_methods(monkeypatch):
    """The runner-test methods (helper_methods.ENTRIES) registered for one test; the built-in list is restored."""
    import helper_methods

    from bench.methods import builtin

    monkeypatch.setattr(builtin, "ENTRIES", [*builtin.ENTRIES, *helper_methods.ENTRIES])


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason when it is absent (a user's machine)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared reference data only exists in the project workspace")
    return path


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """A TORCH_HOME with seeded random stand-ins for the FID Inception and the LPIPS AlexNet,
    plus a registry holding their digests. Built once per test session (about 15 s)."""
    from metric_weights import registry_for, write_alexnet, write_fid_inception

    torch_home = tmp_path_factory.mktemp("torch_home")
    checkpoints = torch_home / "hub" / "checkpoints"
    files = {"inception-fid": write_fid_inception(checkpoints), "lpips-alex": write_alexnet(checkpoints)}
    registry = registry_for(files)
    return {"torch_home": torch_home, "checkpoints": checkpoints, "registry": registry, "files": files}


@pytest.fixture
def metric_env(random_weights, monkeypatch, tmp_path):
    """Point TORCH_HOME at the random weights and the evaluation cache at a fresh folder.

    Random networks produce denormal floats that make CPU convolutions ~3x slower; they are flushed
    to zero during these tests (both our code and the reference library run under the same setting).
    """
    import torch

    monkeypatch.setenv("TORCH_HOME", str(random_weights["torch_home"]))
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("PANINI_BENCH_CACHE", str(tmp_path / "cache"))
    torch.set_flush_denormal(True)
    yield random_weights
    torch.set_flush_denormal(False)


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch thread (as in CI), restoring the previous count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_faces(folder: Path, count: int) -> Path:
    """`count` 1024x1024 synthetic faces as `00000.png`... in `folder`: a CelebA-HQ-like source folder."""
    from PIL import Image

    from bench.datasets.synthetic import synthetic_face

    for i in range(count):
        Image.fromarray(synthetic_face(i)).save(folder / f"{i:05d}.png", compress_level=1)
    return folder


def flat_images(folder: Path, values: list[int], size: int = 16) -> Path:
    """`folder` (made here) with one flat grey size x size PNG per value, named 0.png, 1.png, ..."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    for i, value in enumerate(values):
        Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(folder / f"{i}.png")
    return folder


def chromium_or_skip() -> str:
    """The path of a headless-capable Chromium, or skip the test with how to install one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")


def tiny_train_config(task: str, out_dir, *overrides: str):
    """The tiny training config for `task` writing to `out_dir`, quiet and single-threaded, plus overrides."""
    from bench.methods.train.config import load_config

    name = "train-udrl-tiny" if task == "udrl" else "train-panini-tiny"
    return load_config(task, name, [f"run.out_dir='{out_dir}'", "run.progress=false", "run.threads=1", *overrides])
