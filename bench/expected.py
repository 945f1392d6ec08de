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

`direction` is "higher", "lower" (lower is better: fails when above expected + tolerance) or
"both" (fails outside +-tolerance). Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import tomllib

from bench.config import to_toml
from bench.errors import BenchError
from bench.io import as_float

DIRECTIONS = ("higher", "lower", "both")
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


def load_expected(path: str | Path) -> list[Expected]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"expected-values file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML: {exc}") from None
    for key in data:
        if key not in ("values", "meta"):
            raise BenchError(f"{path}: unknown top-level key '{key}' (known: meta, values)")
    values, seen = [], set()
    for i, row in enumerate(data.get("values", [])):
        where = f"{path}: values[{i}]"
        for key, value in row.items():
            if key not in _FIELDS:
                raise BenchError(f"{where}: unknown key '{key}' (known: {', '.join(_FIELDS)})")
            kind = _FIELDS[key]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else \
                isinstance(value, kind)
            if not ok:
                raise BenchError(f"{where}: key '{key}' must be {'a number' if kind is float else 'a string'}, "
                                 f"got {value!r}")
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
    return values


def result_key(row: dict, with_testset: bool = True) -> tuple[str, str, str, str, str]:
    return (row.get("table", ""), row["method"], row["metric"], row.get("condition", ""),
            row.get("testset", "") if with_testset else "")


@dataclass
class Comparison:
    expected: Expected
    value: float | None  # None = no result for this entry
    status: str  # "ok", "better", "worse", "missing"

    @property
    def difference(self) -> float | None:
        return None if self.value is None else self.value - self.expected.value


def judge(entry: Expected, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "missing"
    low, high = entry.value - entry.tolerance, entry.value + entry.tolerance
    if low <= value <= high:
        return "ok"
    bad_low = entry.direction in ("higher", "both")
    bad_high = entry.direction in ("lower", "both")
    if (value < low and bad_low) or (value > high and bad_high):
        return "worse"
    return "better"


def compare(results: list[dict], expected: list[Expected], tables: set[str] | None = None) -> list[Comparison]:
    """Check each expected entry (of the run's tables) against the run's result rows."""
    by_key = {result_key(row): as_float(row["value"]) for row in results}
    for row in results:  # entries without a test set match the row of any test set
        by_key.setdefault(result_key(row, with_testset=False), as_float(row["value"]))
    out = []
    for entry in expected:
        if tables is not None and entry.table not in tables:
            continue
        value = by_key.get(entry.key)
        out.append(Comparison(entry, value, judge(entry, value)))
    return out


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
