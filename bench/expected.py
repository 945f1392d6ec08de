"""Expected values: published or recorded numbers with a tolerance, a direction and a source.

File format (TOML), one `[[values]]` per (table, method, metric, condition):

    [[values]]
    table = "table1"        # the experiment's `table`
    method = "Panini-Net"   # the method's row label
    metric = "psnr"
    condition = ""          # e.g. "r=16" for Table 4
    testset = ""            # optional: the test set's name in the experiment ("" = any)
    value = 18.01
    tolerance = 0.5         # absolute
    direction = "higher"    # higher is better: fails only when value < expected - tolerance
    source = "paper Table 1"

`direction` is "higher", "lower" (lower is better) or "both" (a measurement, not a score). A
value is `reproduced` when it lies within the tolerance of the published one, or when its
tolerance-widened confidence interval holds it; otherwise `better` or `worse` by the direction
("both": outside is `worse`).

Claims the paper makes, judged on the run's own images by `bench.claims`:

    [[claims]]
    type = "order"          # order | params | trend | slope (default "order")
    table = "table2"
    metric = "fid"
    better = "Panini-Net"   # method names as in the experiment
    worse = "GLEAN"
    testset = ""            # optional: judge on this test set only
    source = "paper Table 2"

`order`: `better` scores better than `worse` on `metric`. `params`: `better` has fewer
parameters than `worse` (no metric). `slope`: the advantage of `better` over `worse` grows with
the degradation `parameter` (e.g. "r"). `trend`: `method`'s `metric` rises (`direction =
"increasing"`) or falls ("decreasing") over the conditions of `parameter`. An `order` claim that
disagrees with the file's own published values is an error. Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.config import to_toml
from bench.errors import BenchError
from bench.io import as_float, read_toml

DIRECTIONS = ("higher", "lower", "both")
CLAIM_TYPES = ("order", "params", "trend", "slope")
TRENDS = ("increasing", "decreasing")
_CLAIM_FIELDS = {"type": str, "table": str, "metric": str, "better": str, "worse": str, "method": str,
                 "parameter": str, "direction": str, "testset": str, "source": str, "note": str}
_CLAIM_REQUIRED = {"order": ("table", "metric", "better", "worse"), "params": ("table", "better", "worse"),
                   "slope": ("table", "metric", "better", "worse", "parameter"),
                   "trend": ("table", "metric", "method", "parameter", "direction")}
_FIELDS = {"table": str, "method": str, "metric": str, "condition": str, "testset": str, "value": float,
           "tolerance": float, "direction": str, "source": str, "note": str}
_REQUIRED = ("table", "method", "metric", "value", "tolerance", "direction", "source")


@dataclass(frozen=True)
class Expected:
    table: str
    method: str
    metric: str
    value: float
    tolerance: float
    direction: str
    source: str
    condition: str = ""
    testset: str = ""
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.table, self.method, self.metric, self.condition, self.testset)


@dataclass(frozen=True)
class Claim:
    """A comparison the paper states; `bench.claims` judges it on the run's images."""

    table: str
    type: str = "order"
    metric: str = ""
    better: str = ""
    worse: str = ""
    method: str = ""
    parameter: str = ""
    direction: str = ""
    testset: str = ""
    source: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        if self.type == "order":
            return f"{self.better} better than {self.worse} on {self.metric}"
        if self.type == "params":
            return f"{self.better} has fewer parameters than {self.worse}"
        if self.type == "slope":
            return f"advantage of {self.better} over {self.worse} on {self.metric} grows with {self.parameter}"
        return f"{self.method}: {self.metric} {self.direction} with {self.parameter}"

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.method,) if self.type == "trend" else (self.better, self.worse)


def _read_toml(path: Path) -> dict:
    data = read_toml(path, "expected-values file")
    for key in data:
        if key not in ("values", "claims", "meta"):
            raise BenchError(f"{path}: unknown top-level key '{key}' (known: meta, values, claims)")
    return data


def _check_keys(row: dict, fields: dict, where: str) -> None:
    for key, value in row.items():
        if key not in fields:
            raise BenchError(f"{where}: unknown key '{key}' (known: {', '.join(fields)})")
        kind = fields[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else \
            isinstance(value, kind)
        if not ok:
            raise BenchError(f"{where}: key '{key}' must be {'a number' if kind is float else 'a string'}, "
                             f"got {value!r}")


def load_expected(path: str | Path) -> list[Expected]:
    """The `[[values]]` of an expected-values file (its claims are checked too)."""
    return load_expected_file(path)[0]


def load_expected_file(path: str | Path) -> tuple[list[Expected], list[Claim]]:
    """(values, claims) of an expected-values file; any unknown key or bad value is a BenchError."""
    path = Path(path)
    data = _read_toml(path)
    values, seen = [], set()
    for i, row in enumerate(data.get("values", [])):
        where = f"{path}: values[{i}]"
        _check_keys(row, _FIELDS, where)
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise BenchError(f"{where}: missing key(s) {', '.join(missing)}")
        if row["direction"] not in DIRECTIONS:
            raise BenchError(f"{where}: direction {row['direction']!r}; choose one of {', '.join(DIRECTIONS)}")
        if row["tolerance"] < 0:
            raise BenchError(f"{where}: tolerance must be >= 0")
        entry = Expected(**{k: float(v) if _FIELDS[k] is float else v for k, v in row.items()})
        if entry.key in seen:
            raise BenchError(f"{where}: duplicate entry for {entry.key}")
        seen.add(entry.key)
        values.append(entry)
    claims = [_claim(row, f"{path}: claims[{i}]") for i, row in enumerate(data.get("claims", []))]
    published = {(c.table, c.metric, c.testset, c.better, c.worse) for c in derive_order_claims(values)}
    for i, claim in enumerate(claims):
        reverse = (claim.table, claim.metric, claim.testset, claim.worse, claim.better)
        if claim.type == "order" and reverse in published:
            raise BenchError(f"{path}: claims[{i}] says {claim.text}, but the file's published values say the "
                             "opposite; fix the claim or the values")
    return values, claims


def _claim(row: dict, where: str) -> Claim:
    _check_keys(row, _CLAIM_FIELDS, where)
    kind = row.get("type", "order")
    if kind not in CLAIM_TYPES:
        raise BenchError(f"{where}: type {kind!r}; choose one of {', '.join(CLAIM_TYPES)}")
    missing = [k for k in _CLAIM_REQUIRED[kind] if not row.get(k)]
    if missing:
        raise BenchError(f"{where}: a '{kind}' claim needs key(s) {', '.join(missing)}")
    if kind == "trend" and row["direction"] not in TRENDS:
        raise BenchError(f"{where}: direction {row['direction']!r}; choose one of {', '.join(TRENDS)}")
    unused = [k for k in ("method", "direction", "parameter", "metric", "better", "worse")
              if k in row and k not in _CLAIM_REQUIRED[kind]]
    if unused:
        raise BenchError(f"{where}: key(s) {', '.join(unused)} mean nothing in a '{kind}' claim")
    if kind != "trend" and row["better"] == row["worse"]:
        raise BenchError(f"{where}: better and worse are both {row['better']!r}")
    return Claim(**{"type": kind, **row})


def derive_order_claims(values: list[Expected]) -> list[Claim]:
    """Every pairwise order the published values show: per table, metric and test set, each pair of
    methods with different values (scores only; conditions and "both"-direction measurements are skipped)."""
    groups: dict[tuple[str, str, str], list[Expected]] = {}
    for entry in values:
        if entry.direction in ("higher", "lower") and not entry.condition:
            groups.setdefault((entry.table, entry.metric, entry.testset), []).append(entry)
    claims = []
    for (table, metric, testset), entries in groups.items():
        for i, first in enumerate(entries):
            for second in entries[i + 1:]:
                if first.value == second.value:
                    continue
                higher_wins = first.direction == "higher"
                better, worse = (first, second) if (first.value > second.value) == higher_wins else (second, first)
                claims.append(Claim(table=table, metric=metric, better=better.method, worse=worse.method,
                                    testset=testset, source=f"{better.source} (order of the published values)"))
    return claims


def result_key(row: dict, with_testset: bool = True) -> tuple[str, str, str, str, str]:
    return (row.get("table", ""), row["method"], row["metric"], row.get("condition", ""),
            row.get("testset", "") if with_testset else "")


VALUE_VERDICTS = ("reproduced", "better", "worse", "missing")


@dataclass
class Comparison:
    expected: Expected
    value: float | None  # None = no result for this entry
    status: str  # one of VALUE_VERDICTS
    ci: tuple[float, float] | None = None
    testset: str = ""  # the test set of the result row it was checked against

    @property
    def difference(self) -> float | None:
        return None if self.value is None else self.value - self.expected.value


def judge(entry: Expected, value: float | None, ci: tuple[float, float] | None = None) -> str:
    """reproduced / better / worse / missing: two-sided, with the CI widened by the tolerance."""
    if value is None or math.isnan(value):
        return "missing"
    low, high = entry.value - entry.tolerance, entry.value + entry.tolerance
    if low <= value <= high:
        return "reproduced"
    if ci is not None and ci[0] - entry.tolerance <= entry.value <= ci[1] + entry.tolerance:
        return "reproduced"
    bad_low = entry.direction in ("higher", "both")
    bad_high = entry.direction in ("lower", "both")
    if (value < low and bad_low) or (value > high and bad_high):
        return "worse"
    return "better"


def compare(results: list[dict], expected: list[Expected], tables: set[str] | None = None) -> list[Comparison]:
    """Check each expected entry (of the run's tables) against the run's result rows."""
    by_key = {result_key(row): row for row in results}
    for row in results:  # entries without a test set match the row of any test set
        by_key.setdefault(result_key(row, with_testset=False), row)
    out = []
    for entry in expected:
        if tables is not None and entry.table not in tables:
            continue
        row = by_key.get(entry.key)
        value, ci = (None, None) if row is None else (as_float(row["value"]), result_ci(row))
        out.append(Comparison(entry, value, judge(entry, value, ci), ci, "" if row is None else row.get("testset", "")))
    return out


def result_ci(row: dict) -> tuple[float, float] | None:
    """The (low, high) interval of a result row, or None when it has none."""
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return None
    return as_float(row["ci_low"]), as_float(row["ci_high"])


def default_tolerance(metric: str, value: float) -> float:
    """Tolerance for `--write-expected` when none is given: 1% of the value, at least 1e-4."""
    return max(abs(value) * 0.01, 1e-4)


def expected_from_results(results: list[dict], tolerance: float | None, source: str,
                          higher_is_better: dict[str, bool | None]) -> list[Expected]:
    out = []
    for row in results:
        value = as_float(row["value"])
        if math.isnan(value) or math.isinf(value):
            continue
        better = higher_is_better.get(row["metric"])
        direction = "both" if better is None else ("higher" if better else "lower")
        out.append(Expected(table=row.get("table", ""), method=row["method"], metric=row["metric"],
                            condition=row.get("condition", ""), testset=row.get("testset", ""), value=value,
                            tolerance=default_tolerance(row["metric"], value) if tolerance is None else tolerance,
                            direction=direction, source=source))
    return out


def write_expected(path: str | Path, values: list[Expected], header: str) -> None:
    from bench.io import atomic_write_text

    rows = []
    for entry in values:
        row = {k: v for k, v in asdict(entry).items() if v != "" or k in _REQUIRED}
        rows.append(row)
    atomic_write_text(path, to_toml({"values": rows}, header=header))
