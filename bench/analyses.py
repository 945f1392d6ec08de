"""Analyses of one method on one test set besides its metric scores: θ (Eq. 11), dissection, parameter count.

The runner decides what runs where (sharding, caching, failures); these functions do the work on
the items they are given and return plain rows: per-image θ values, result rows with confidence
intervals from the one bootstrap (`bench.metrics.bootstrap`), and dissection records whose images
they write. A new analysis (e.g. results by degradation level) is one more function here and one
line in the runner's `_analyses`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.io import to_uint8, write_png
from bench.metrics.bootstrap import bootstrap_mean_ci

THETA_PROTOCOL = "theta-dafi5-channel-mean"
THETA_SEED_STREAM = 7  # the bootstrap of θ draws from rng([experiment seed, 7])


@dataclass(frozen=True)
class Target:
    """One method on one test set, as an analysis sees it."""

    method: Any  # a created bench.methods Method
    label: str  # the method's row label in the experiment
    testset: Any  # bench.runner.TestSet: name, id, rows, lq(id)
    group_by: str  # manifest parameter that splits the values ('' = one group)
    load_lq: Callable[[list[str]], Any]  # image ids -> LQ batch at the method's input size

    @property
    def analyze(self):
        if not hasattr(self.method, "analyze"):
            raise BenchError(f"method '{self.method.spec.name}' has no analyze() hook: the θ and dissection "
                             "analyses need a Panini-Net with DAFI fusion (panini-mfr / panini-sr16)")
        return self.method.analyze

    def condition(self, row: dict) -> str:
        """`key=value` of the `group_by` parameter of a manifest row ('' without group_by)."""
        key = self.group_by
        if not key:
            return ""
        params = row.get("params", {})
        value = params.get(key, row.get(key))
        if value is None:
            raise BenchError(f"test set '{self.testset.name}': group_by = {key!r} but manifest row {row['id']} has "
                             f"no such parameter (parameters: {', '.join(sorted(params))})")
        return f"{key}={value:g}" if isinstance(value, (int, float)) else f"{key}={value}"


def theta(target: Target, id_batches: Iterable[list[str]]) -> list[dict]:
    """Per-image θ of the last DAFI block (and of every block), one row per image id."""
    analyze = target.analyze
    by_id = {row["id"]: row for row in target.testset.rows}
    out = []
    for chunk in id_batches:
        result = analyze(target.load_lq(chunk))
        if result.theta is None:
            raise BenchError(f"{target.method.spec.name}: the model gives no masks (fusion without DAFI has no θ)")
        for image_id, blocks in zip(chunk, result.theta.float().cpu().numpy(), strict=True):
            out.append({"id": image_id, "metric": "theta", "condition": target.condition(by_id[image_id]),
                        "value": float(blocks[-1]), "theta_blocks": [float(b) for b in blocks]})
    return out


def theta_summary(rows: list[dict], resamples: int, seed: int) -> list[dict]:
    """Mean θ per condition with its spread (sd over images) and a seeded bootstrap interval."""
    import numpy as np

    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row["condition"], []).append(row["value"])
    out = []
    for condition, values in groups.items():
        array = np.asarray(values, dtype=np.float64)
        low, high, level = bootstrap_mean_ci(array, resamples, seed=[seed, THETA_SEED_STREAM])
        out.append({"metric": "theta", "condition": condition, "value": float(array.mean()), "n": int(array.size),
                    "spread": float(array.std(ddof=1)) if array.size > 1 else 0.0, "ci_low": low, "ci_high": high,
                    "ci_level": level, "higher_is_better": None, "protocol_id": THETA_PROTOCOL,
                    "min": float(array.min()), "max": float(array.max())})
    out.sort(key=lambda r: _number(r["condition"]))
    return out


def _number(condition: str) -> float:
    try:
        return float(condition.partition("=")[2])
    except ValueError:
        return math.inf


def dissection_rows(rows: list[dict], limit: int) -> list[dict]:
    """The manifest rows of the first `limit` source images (each source may appear at several levels)."""
    sources: list = []
    for row in rows:
        if row.get("source") not in sources:
            sources.append(row.get("source"))
    chosen = set(sources[:limit])
    return [row for row in rows if row.get("source") in chosen]


def dissection(target: Target, rows: list[dict], folder: Path, run_dir: Path) -> list[dict]:
    """Eq. (12)/(13): the full output, GPB-only and IFE-only images of each row, written under `folder`."""
    analyze = target.analyze
    ts = target.testset
    out = []
    for row in rows:
        lq = target.load_lq([row["id"]])
        files = {"X": _relative(ts.lq(row["id"]), run_dir)}
        theta_value = None
        for part, mode in (("Y", None), ("Y_GPB", "gpb"), ("Y_IFE", "ife")):
            result = analyze(lq, dissection=mode)
            if mode is None and result.theta is not None:
                theta_value = float(result.theta[0, -1])
            path = folder / f"{row['id']}_{part}.png"
            write_png(path, to_uint8(result.image)[0])
            files[part] = _relative(path, run_dir)
        out.append({"kind": "dissection", "method": target.label, "testset": ts.name, "testset_id": ts.id,
                    "id": row["id"], "source_id": str(row.get("source")), "condition": target.condition(row),
                    "theta": theta_value, "files": files})
    return out


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())


def params_row(count: int | None) -> list[dict]:
    """The parameter count in millions as a result row (none when the method has no torch model)."""
    if count is None:
        return []
    return [{"metric": "params_M", "value": count / 1e6, "n": None, "higher_is_better": None,
             "protocol_id": "parameter-count"}]
