"""`bench compare RUN_DIR --expected FILE.toml`: exit 1 when a value leaves its tolerance the bad way."""

from __future__ import annotations

import argparse

HELP = "check a run against expected values (exit 1 on a regression); --write-expected records them"
EXAMPLES = """
bench compare runs/ci --write-expected my-expected.toml
bench compare runs/ci --expected my-expected.toml --all
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder made by `bench run`")
    parser.add_argument("--expected", metavar="FILE", help="expected-values TOML (default: the experiment's own)")
    parser.add_argument("--write-expected", metavar="FILE", help="write the run's values as an expected-values file")
    parser.add_argument("--tolerance", type=float, help="with --write-expected: absolute tolerance for every "
                        "value (default 1%% of the value)")
    parser.add_argument("--all", action="store_true", help="list every checked value, not only those that moved")


def _table(comparisons, show_all: bool) -> str:
    from bench.reports.tables import fmt

    lines = []
    header = ("status", "table", "method", "metric", "expected", "tolerance", "reproduced", "difference")
    rows = []
    for c in comparisons:
        if c.status == "ok" and not show_all:
            continue
        e = c.expected
        metric = e.metric + (f" [{e.condition}]" if e.condition else "")
        diff = c.difference
        rows.append((c.status.upper() if c.status in ("worse", "missing") else c.status, e.table, e.method, metric,
                     fmt(e.value, e.metric), fmt(e.tolerance, e.metric), fmt(c.value, e.metric),
                     "" if diff is None else ("+" if diff >= 0 else "") + fmt(diff, e.metric)))
    if not rows:
        return ""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.errors import BenchError
    from bench.expected import compare, expected_from_results, load_expected, write_expected
    from bench.io import read_json, read_jsonl

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.json").exists():
        raise BenchError(f"{run_dir} is not a run folder (no run.json); make one with `bench run`")
    info = read_json(run_dir / "run.json")
    results = read_jsonl(run_dir / "results.jsonl")
    if args.write_expected:
        better = {row["metric"]: row.get("higher_is_better") for row in results}
        commit = (info.get("provenance", {}).get("git", {}).get("commit") or "unknown")[:12]
        source = f"run {info.get('experiment')} ({commit}, {info.get('provenance', {}).get('started', '')})"
        values = expected_from_results(results, args.tolerance, source, better)
        write_expected(args.write_expected, values,
                       header=f"Expected values recorded from {run_dir} by `bench compare --write-expected`.\n"
                              f"Source: {source}. Edit tolerances as needed.")
        print(f"wrote {len(values)} expected values to {args.write_expected}")
        return 0
    path = args.expected or info.get("expected_file")
    if not path:
        raise BenchError(f"{run_dir}: the experiment names no expected-values file; pass --expected FILE.toml")
    expected = load_expected(path)
    tables = {row.get("table", "") for row in results} | {info.get("config", {}).get("experiment", {}).get("table")}
    comparisons = compare(results, expected, tables)
    if not comparisons:
        raise BenchError(f"{path} has no values for table(s) {', '.join(sorted(t for t in tables if t))} of this run")
    bad = [c for c in comparisons if c.status in ("worse", "missing")]
    text = _table(comparisons, args.all)
    if text:
        print(text)
    counts = {s: sum(c.status == s for c in comparisons) for s in ("ok", "better", "worse", "missing")}
    print(f"{len(comparisons)} values checked against {path}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if bad else 0
