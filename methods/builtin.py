"""The built-in methods, as data: spec + factory path. Add a method by adding an entry here."""

from __future__ import annotations

from bench.methods.registry import MethodEntry

ENTRIES: list[MethodEntry] = []
