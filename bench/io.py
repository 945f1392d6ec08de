"""Small file helpers shared by every writer: atomic writes and JSON lines."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers never see a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_line(obj) -> str:
    """One canonical JSON line (sorted keys), so equal content gives equal bytes and hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_jsonl(path: str | Path, rows) -> None:
    atomic_write_text(path, "".join(dumps_line(row) + "\n" for row in rows))


def read_jsonl(path: str | Path, tolerate_partial_last_line: bool = False) -> list[dict]:
    """Rows of a JSON-lines file; a cut-off last line (a killed writer) is dropped if tolerated."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if tolerate_partial_last_line and number == len(lines):
                break
            raise ValueError(f"{path}: line {number} is not valid JSON") from None
    return rows
