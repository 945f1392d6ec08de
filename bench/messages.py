"""Pieces of error messages that several modules build alike: a shortened list, a lookup by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from bench.errors import BenchError

T = TypeVar("T")


def short_list(items: Iterable[str], limit: int = 12) -> str:
    """The sorted items joined by commas, cut after `limit` with how many more there are (long lists stay readable)."""
    items = sorted(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def pick(table: Mapping[str, T], name: str, what: str, where: str = "") -> T:
    """table[name], or a BenchError naming the unknown `what` (in `where`) and the names to choose from."""
    if name not in table:
        prefix = f"{where}: " if where else ""
        raise BenchError(f"{prefix}unknown {what} {name!r}; choose from {', '.join(table)}")
    return table[name]
