"""Methods used only by the runner tests: a slow bicubic (to kill a run mid-way) and one that raises.

In-process tests use the `test_methods` fixture (conftest.py), which restores the built-in list.
A CLI subprocess calls `register()` before `bench.cli.main`, so the real CLI and registry code
paths run; the change ends with that process.
"""

from __future__ import annotations

import time

from bench.methods import builtin
from bench.methods.generic import create_bicubic
from bench.methods.registry import Method, MethodEntry, MethodSpec

SLOW = MethodEntry(MethodSpec(name="test-slow-bicubic", task="any", in_size=None, out_size=1024),
                   "helper_methods:create_slow")
RAISING = MethodEntry(MethodSpec(name="test-raising", task="any", in_size=None, out_size=1024),
                      "helper_methods:create_raising")
ENTRIES = (SLOW, RAISING)


class _Slow(Method):
    def __init__(self, inner: Method, delay: float):
        super().__init__(inner.spec, inner.model, inner.device, inner.protocol)
        self.delay = delay

    def restore(self, lq):
        time.sleep(self.delay)
        return super().restore(lq)


class _Raising(Method):
    def restore(self, lq):
        raise RuntimeError("this test method always fails")


def create_slow(spec: MethodSpec, weights=None, device="cpu", delay: float = 0.5):
    return _Slow(create_bicubic(spec, device=device), delay)


def create_raising(spec: MethodSpec, weights=None, device="cpu"):
    inner = create_bicubic(spec, device=device)
    return _Raising(spec, inner.model, device)


def register() -> None:
    """For a CLI subprocess only: adds ENTRIES to this process's built-in list for good."""
    builtin.ENTRIES.extend(entry for entry in ENTRIES if entry not in builtin.ENTRIES)
