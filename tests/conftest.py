"""Shared test fixtures: paths to ../shared (skipped with a reason where it is absent)."""

from __future__ import annotations

import os

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
