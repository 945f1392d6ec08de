"""Shared test fixtures: paths to ../shared (skipped with a reason where it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PANINI_BENCH_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _single_thread(monkeypatch):
    """Keep tests to one BLAS/OpenMP thread each so timings and results are stable on 2 cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason when it is absent (a user's machine)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared reference data only exists in the project workspace")
    return path
