"""Judge the paper's claims (`[[claims]]` of an expected-values file) on a run's own images.

Every claim is tested on the same images for both methods (paired):
- per-image metrics (PSNR, SSIM, LPIPS, ...): a seeded bootstrap of the mean per-image difference;
- set metrics (FID, KID): a seeded bootstrap that draws the same image indices for both methods and
  the GT, from the Inception features the runner keeps in `features/<method>/<testset_id>.npz`;
- `slope`: the least-squares slope of the per-image difference against a degradation parameter;
- `trend`: the smallest step between consecutive parameter levels, levels resampled independently;
- `params`: the parameter counts in run.json (exact, no interval).

Verdict words: `supported` (the 95% CI of the difference excludes 0 in the claimed direction),
`inconclusive` (it includes 0), `contradicted` (it excludes 0 the other way); `missing` when the run
lacks what the claim needs (a method, a metric, features), with the reason.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.by_degradation import binner, joined_rows
from bench.expected import Claim
from bench.io import as_float, atomic_write_bytes, read_json, read_jsonl
from bench.metrics.bootstrap import bootstrap_mean_ci, bootstrap_statistic_ci
from bench.store import RESULTS_FILE, RUN_FILE, slug

VERDICTS = ("supported", "inconclusive", "contradicted")
FEATURES_DIR = "features"
RESAMPLES = 2000  # per-image claims: cheap, so many draws
SET_RESAMPLES = 200  # FID/KID claims: two distances per draw
LEVEL = 0.95


@dataclass
class Verdict:
    claim: Claim
    testset: str
    verdict: str  # one of VERDICTS, or "missing"
    difference: float | None = None  # better - worse (order/slope/params) or the smallest step (trend)
    ci: tuple[float, float] | None = None
    n: int | None = None
    test: str = ""
    seed: int | None = None
    reason: str = ""

    def texts(self) -> dict[str, str]:
        """Δ, CI, n and test as short strings (for `bench compare` and the report)."""
        def number(x: float) -> str:
            return f"{x:+.4g}"

        return {"difference": "" if self.difference is None else number(self.difference),
                "ci": "" if self.ci is None else f"[{number(self.ci[0])}, {number(self.ci[1])}]",
                "n": "" if self.n is None else str(self.n),
                "test": self.reason or self.test + ("" if self.seed is None else f", seed {self.seed}")}


# ----------------------------------------------------------------------------- features (runner hook)

def features_path(run_dir: Path, method: str, testset_id: str) -> Path:
    return Path(run_dir) / FEATURES_DIR / slug(method) / f"{testset_id}.npz"


def save_features(run_dir: Path, method: str, testset_id: str, states: list[dict]) -> None:
    """Keep the per-image Inception features (with ids) of any metric state that holds them (FID/KID)."""
    for state in states:
        if not {"ids", "pred", "gt"} <= set(state):
            continue
        pred, gt = _rows(state["pred"]), _rows(state["gt"])
        if not len(pred) or len(gt) != len(pred):
            continue
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.asarray(state["ids"], dtype=str), pred=pred, gt=gt)
        atomic_write_bytes(features_path(run_dir, method, testset_id), buffer.getvalue())


def _rows(parts) -> np.ndarray:
    """Feature rows from a state's list of per-batch arrays (or one stacked array)."""
    arrays = [np.asarray(p, np.float32) for p in parts]
    return np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays]) if arrays else np.zeros((0, 0), np.float32)


def _features(run_dir: Path, method: str, testset_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    path = features_path(run_dir, method, testset_id)
    if not path.exists():
        return None
    with np.load(path) as data:
        return {str(i): (p, g) for i, p, g in zip(data["ids"], data["pred"], data["gt"], strict=True)}


def _set_distance(metric: str):
    from bench.metrics.fid import fid_from_features, kernel_distance

    if metric == "fid":
        return fid_from_features
    return lambda pred, gt: kernel_distance(pred, gt, subset_size=len(pred))  # every image, no subsets


# ----------------------------------------------------------------------------- verdicts

def verdict_of(ci: tuple[float, float], sign: float) -> str:
    """supported / contradicted / inconclusive from a CI of a difference whose claimed sign is `sign`."""
    low, high = sorted((ci[0] * sign, ci[1] * sign))
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "inconclusive"


class _Judge:
    def __init__(self, run_dir: Path, resamples: int | None, seed: int | None):
        self.dir = run_dir
        self.info = read_json(run_dir / RUN_FILE)
        self.seed = self.info.get("config", {}).get("experiment", {}).get("seed", 0) if seed is None else seed
        self.resamples = resamples
        self.rows = joined_rows(run_dir)
        results = read_jsonl(run_dir / RESULTS_FILE)
        self.better = {r["metric"]: r.get("higher_is_better") for r in results}
        self.testsets = {name: t.get("id", "") for name, t in self.info.get("testsets", {}).items()}

    def testsets_for(self, claim: Claim) -> list[str]:
        """Test sets where every method of the claim has a result (the claim's own, if it names one)."""
        names = [claim.testset] if claim.testset else list(self.testsets)
        have = {(r["method"], r.get("testset")) for r in self.rows}
        have |= {(m, t) for t in names for m in claim.methods if self._feature_file(m, t).exists()}
        return [t for t in names if all((m, t) in have for m in claim.methods)]

    def _feature_file(self, method: str, testset: str) -> Path:
        return features_path(self.dir, method, self.testsets.get(testset, ""))

    def values(self, method: str, testset: str, metric: str) -> dict[str, dict]:
        return {r["id"]: r for r in self.rows if r["method"] == method and r.get("testset") == testset
                and r["metric"] == metric and math.isfinite(as_float(r["value"]))}

    def sign(self, metric: str) -> float | None:
        better = self.better.get(metric)
        return None if better is None else (1.0 if better else -1.0)

    def judge(self, claim: Claim) -> list[Verdict]:
        if claim.type == "params":
            return [self.params(claim)]
        testsets = self.testsets_for(claim)
        if not testsets:
            where = f"test set {claim.testset!r}" if claim.testset else "any test set"
            return [Verdict(claim, claim.testset, "missing",
                            reason=f"no results of {' and '.join(claim.methods)} on {where} of this run")]
        judge = {"order": self.order, "slope": self.slope, "trend": self.trend}[claim.type]
        return [judge(claim, t) for t in testsets]

    def params(self, claim: Claim) -> Verdict:
        counts = [self.info.get("methods", {}).get(m, {}).get("params") for m in claim.methods]
        if None in counts:
            return Verdict(claim, "", "missing", reason="run.json has no parameter count for " +
                           " and ".join(m for m, c in zip(claim.methods, counts, strict=True) if c is None))
        diff = float(counts[0] - counts[1])
        return Verdict(claim, "", verdict_of((diff, diff), -1.0), diff, (diff, diff), None,
                       "parameter counts of the loaded models (exact)")

    def order(self, claim: Claim, testset: str) -> Verdict:
        sign = self.sign(claim.metric)
        if sign is None:
            return Verdict(claim, testset, "missing", reason=f"the run does not say whether higher {claim.metric} "
                           "is better")
        better, worse = (self.values(m, testset, claim.metric) for m in claim.methods)
        if better or worse:
            ids = sorted(set(better) & set(worse))
            diffs = np.array([as_float(better[i]["value"]) - as_float(worse[i]["value"]) for i in ids])
            if diffs.size < 2:
                return Verdict(claim, testset, "missing", reason="fewer than 2 images scored by both methods")
            resamples = self.resamples or RESAMPLES
            low, high, _ = bootstrap_mean_ci(diffs, resamples, LEVEL, self.seed)
            return Verdict(claim, testset, verdict_of((low, high), sign), float(diffs.mean()), (low, high),
                           int(diffs.size), f"paired bootstrap of per-image differences ({resamples} resamples)",
                           self.seed)
        return self.set_order(claim, testset, sign)

    def set_order(self, claim: Claim, testset: str, sign: float) -> Verdict:
        if claim.metric not in ("fid", "kid"):
            return Verdict(claim, testset, "missing", reason=f"no per-image {claim.metric} values in this run")
        feats = [_features(self.dir, m, self.testsets.get(testset, "")) for m in claim.methods]
        if None in feats:
            return Verdict(claim, testset, "missing", reason="no Inception features saved for this test set "
                           "(FID not scored, or a run made before features were kept)")
        ids = sorted(set(feats[0]) & set(feats[1]))
        if len(ids) < 2:
            return Verdict(claim, testset, "missing", reason="fewer than 2 images with features for both methods")
        better = np.stack([feats[0][i][0] for i in ids])
        worse = np.stack([feats[1][i][0] for i in ids])
        gt = np.stack([feats[0][i][1] for i in ids])
        distance = _set_distance(claim.metric)

        def statistic(idx: np.ndarray) -> float:
            return distance(better[idx], gt[idx]) - distance(worse[idx], gt[idx])

        resamples = min(self.resamples or SET_RESAMPLES, SET_RESAMPLES)
        low, high, _ = bootstrap_statistic_ci(len(ids), statistic, resamples, LEVEL, self.seed)
        return Verdict(claim, testset, verdict_of((low, high), sign), statistic(np.arange(len(ids))), (low, high),
                       len(ids), f"paired bootstrap of the {claim.metric.upper()} difference, same image indices "
                       f"for both methods and the GT ({resamples} resamples)", self.seed)

    def slope(self, claim: Claim, testset: str) -> Verdict:
        sign = self.sign(claim.metric)
        better, worse = (self.values(m, testset, claim.metric) for m in claim.methods)
        ids = sorted(i for i in set(better) & set(worse) if claim.parameter in better[i]["params"])
        if sign is None or len(ids) < 3:
            return Verdict(claim, testset, "missing", reason=f"fewer than 3 paired images with parameter "
                           f"{claim.parameter!r} and per-image {claim.metric}")
        x = np.array([better[i]["params"][claim.parameter] for i in ids])
        # the advantage in the metric's good direction: positive when `better` is better
        d = sign * np.array([as_float(better[i]["value"]) - as_float(worse[i]["value"]) for i in ids])

        def statistic(idx: np.ndarray) -> float:
            xs = x[idx] - x[idx].mean()
            denominator = float(xs @ xs)
            return float(xs @ (d[idx] - d[idx].mean()) / denominator) if denominator > 0 else math.nan

        resamples = self.resamples or RESAMPLES
        low, high, _ = bootstrap_statistic_ci(len(ids), statistic, resamples, LEVEL, self.seed)
        return Verdict(claim, testset, verdict_of((low, high), 1.0), statistic(np.arange(len(ids))), (low, high),
                       len(ids), f"paired bootstrap of the least-squares slope of the per-image advantage against "
                       f"{claim.parameter} ({resamples} resamples)", self.seed)

    def trend(self, claim: Claim, testset: str) -> Verdict:
        rows = [r for r in self.values(claim.method, testset, claim.metric).values() if claim.parameter in r["params"]]
        x = np.array([r["params"][claim.parameter] for r in rows])
        if x.size < 4:
            return Verdict(claim, testset, "missing", reason=f"fewer than 4 images with parameter {claim.parameter!r}")
        levels = binner(x)(x)
        groups = [np.array([as_float(r["value"]) for r, k in zip(rows, levels, strict=True) if k == level])
                  for level in sorted(set(levels.tolist()))]
        if len(groups) < 2:
            return Verdict(claim, testset, "missing", reason=f"{claim.parameter} takes a single value")
        sign = 1.0 if claim.direction == "increasing" else -1.0

        def smallest_step(means: np.ndarray) -> float:
            return float((sign * np.diff(means)).min())

        rng = np.random.default_rng(self.seed)
        resamples = self.resamples or RESAMPLES
        draws = np.array([smallest_step(np.array([g[rng.integers(0, g.size, g.size)].mean() for g in groups]))
                          for _ in range(resamples)])
        alpha = (1 - LEVEL) / 2
        low, high = (float(v) for v in np.quantile(draws, [alpha, 1 - alpha]))
        step = smallest_step(np.array([g.mean() for g in groups]))
        return Verdict(claim, testset, verdict_of((low, high), 1.0), step, (low, high), int(x.size),
                       f"bootstrap of the smallest step between the {len(groups)} {claim.parameter} levels, "
                       f"images resampled within each level ({resamples} resamples)",
                       self.seed)


def judge_claims(run_dir: str | Path, claims: list[Claim], tables: set[str] | None = None,
                 resamples: int | None = None, seed: int | None = None) -> list[Verdict]:
    """One Verdict per claim (of the run's tables) and test set it can be judged on."""
    claims = [c for c in claims if tables is None or c.table in tables]
    if not claims:
        return []
    judge = _Judge(Path(run_dir), resamples, seed)
    return [v for claim in claims for v in judge.judge(claim)]
