"""Results by degradation level: every per-image score joined with its manifest parameters, then
averaged in quantile bins of each parameter, per method, with seeded bootstrap intervals.

Computed from a run folder's own files (run.json names the test-set folders; their manifest.jsonl
rows hold the parameters), so `bench run` writes `by_degradation.jsonl` at the end of a run and the
report recomputes it for runs made before this file existed. Answers "where does each method break".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.io import as_float, read_json, read_jsonl, write_jsonl
from bench.metrics.bootstrap import bootstrap_mean_ci
from bench.store import PER_IMAGE_FILE, RUN_FILE

BY_DEGRADATION_FILE = "by_degradation.jsonl"
BINS = 4
RESAMPLES = 500
NOT_LEVELS = ("kernel_size",)  # follows from sigma; seeds (names ending in _seed) are no level either


def manifest_params(run_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """test set name -> image id -> its numeric degradation parameters that vary within the set."""
    info = read_json(run_dir / RUN_FILE)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, entry in info.get("testsets", {}).items():
        manifest = Path(entry.get("dir") or "") / "manifest.jsonl"
        if not entry.get("dir") or not manifest.exists():
            continue
        rows = {row["id"]: {k: float(v) for k, v in row.get("params", {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)
                            and not k.endswith("_seed") and k not in NOT_LEVELS}
                for row in read_jsonl(manifest)}
        varying = {k for params in rows.values() for k in params
                   if len({p.get(k) for p in rows.values()}) > 1}
        out[name] = {image_id: {k: v for k, v in params.items() if k in varying} for image_id, params in rows.items()}
    return out


def joined_rows(run_dir: str | Path) -> list[dict]:
    """per_image.jsonl rows with a `params` dict (empty where the test set has no varying parameters)."""
    run_dir = Path(run_dir)
    params = manifest_params(run_dir)
    return [{**row, "params": params.get(row.get("testset"), {}).get(row["id"], {})}
            for row in read_jsonl(run_dir / PER_IMAGE_FILE)]


def binner(values: np.ndarray, bins: int = BINS):
    """A function mapping parameter values to bin indices: quantile bins of `values`, or one bin per
    value when the parameter takes at most `bins` distinct values (e.g. the four r of the θ set)."""
    distinct = np.unique(values)
    if distinct.size <= bins:
        return lambda x: np.searchsorted(distinct, x)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    return lambda x: np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)


def by_degradation(rows: list[dict], bins: int = BINS, resamples: int = RESAMPLES, seed: int = 0) -> list[dict]:
    """One row per (test set, parameter, metric, method, bin): mean, its 95% CI, n and the bin's range.

    The edges come from the test set's images (all methods share them), so the lines of a plot are
    comparable bin by bin."""
    out = []
    for testset in sorted({r.get("testset", "") for r in rows}):
        mine = [r for r in rows if r.get("testset", "") == testset and r["params"]]
        images = {r["id"]: r["params"] for r in mine}
        for parameter in sorted({k for p in images.values() for k in p}):
            xs = np.array([p[parameter] for p in images.values() if parameter in p])
            to_bin = binner(xs, bins)
            for metric in sorted({r["metric"] for r in mine}):
                for method in sorted({r["method"] for r in mine if r["metric"] == metric}):
                    picked = [(r["params"][parameter], as_float(r["value"])) for r in mine
                              if r["metric"] == metric and r["method"] == method and parameter in r["params"]]
                    picked = [(x, v) for x, v in picked if math.isfinite(v)]
                    if not picked:
                        continue
                    x, v = (np.array(a) for a in zip(*picked, strict=True))
                    index = to_bin(x)
                    for k in sorted(set(index.tolist())):
                        values = v[index == k]
                        low, high, level = bootstrap_mean_ci(values, resamples, seed=seed)
                        out.append({"testset": testset, "parameter": parameter, "metric": metric, "method": method,
                                    "bin": int(k), "x_low": float(x[index == k].min()),
                                    "x_high": float(x[index == k].max()), "x_median": float(np.median(x[index == k])),
                                    "n": int(values.size), "mean": float(values.mean()), "ci_low": low,
                                    "ci_high": high, "ci_level": level})
    return out


def write_by_degradation(run_dir: str | Path, seed: int = 0) -> Path:
    """Compute the run's by-degradation rows and write them to RUN_DIR/by_degradation.jsonl."""
    run_dir = Path(run_dir)
    path = run_dir / BY_DEGRADATION_FILE
    write_jsonl(path, by_degradation(joined_rows(run_dir), seed=seed))
    return path


def read_by_degradation(run_dir: str | Path, seed: int = 0) -> list[dict]:
    """The run's by-degradation rows; computed now for runs made before the file existed."""
    run_dir = Path(run_dir)
    path = run_dir / BY_DEGRADATION_FILE
    if path.exists():
        return read_jsonl(path)
    return by_degradation(joined_rows(run_dir), seed=seed)
