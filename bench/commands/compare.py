"""`bench compare RUN_DIR [--expected FILE.toml] [--strict]`: one line per published value and per claim.

Values: `reproduced` / `better` / `worse` (`missing` when the run has none). Claims: `supported` /
`inconclusive` / `contradicted` (`missing` when the run lacks what the claim needs). Exit 1 on any
`worse`, `contradicted` or `missing`; `--strict` also on `better` and `inconclusive`.
"""

from __future__ import annotations

import argparse

HELP = ("check a run against published values and claims (exit 1 when not reproduced); "
        "--write-expected records the run's values")
EXAMPLES = """
bench compare runs/ci --write-expected my-expected.toml
bench compare runs/ci --expected my-expected.toml --strict
"""
FAILING = {"worse", "missing", "contradicted"}
STRICT_FAILING = FAILING | {"better", "inconclusive"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder made by `bench run`")
    parser.add_argument("--expected", metavar="FILE", help="expected-values TOML (default: the experiment's own)")
    parser.add_argument("--strict", action="store_true", help="also fail on values better than published beyond "
                        "tolerance and on inconclusive claims")
    parser.add_argument("--write-expected", metavar="FILE", help="write the run's values as an expected-values file")
    parser.add_argument("--tolerance", type=float, help="with --write-expected: absolute tolerance for every "
                        "value (default 1%% of the value)")


def _columns(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def value_lines(comparisons) -> list[str]:
    from bench.reports.tables import fmt

    rows = [("value", "verdict", "table", "test set", "method", "metric", "reproduced", "published", "Δ", "95% CI")]
    for c in comparisons:
        e = c.expected
        diff = c.difference
        rows.append(("value", c.status, e.table, c.testset or e.testset or "–", e.method,
                     e.metric + (f" [{e.condition}]" if e.condition else ""), fmt(c.value, e.metric),
                     f"{fmt(e.value, e.metric)} ±{fmt(e.tolerance, e.metric)}",
                     "" if diff is None else ("+" if diff >= 0 else "") + fmt(diff, e.metric),
                     "" if c.ci is None else f"[{fmt(c.ci[0], e.metric)}, {fmt(c.ci[1], e.metric)}]"))
    return _columns(rows) if comparisons else []


def claim_lines(verdicts) -> list[str]:
    rows = [("claim", "verdict", "table", "test set", "claim", "Δ", "95% CI", "n", "test, seed")]
    for v in verdicts:
        t = v.texts()
        rows.append(("claim", v.verdict, v.claim.table, v.testset or "–", v.claim.text, t["difference"], t["ci"],
                     t["n"], t["test"]))
    return _columns(rows) if verdicts else []


def _write_expected(args, run_dir, info, results) -> int:
    from bench.expected import expected_from_results, write_expected

    better = {row["metric"]: row.get("higher_is_better") for row in results}
    commit = (info.get("provenance", {}).get("git", {}).get("commit") or "unknown")[:12]
    source = f"run {info.get('experiment')} ({commit}, {info.get('provenance', {}).get('started', '')})"
    values = expected_from_results(results, args.tolerance, source, better)
    write_expected(args.write_expected, values,
                   header=f"Expected values recorded from {run_dir} by `bench compare --write-expected`.\n"
                          f"Source: {source}. Edit tolerances as needed.")
    print(f"wrote {len(values)} expected values to {args.write_expected}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.claims import judge_claims
    from bench.errors import BenchError
    from bench.expected import compare, load_expected_file
    from bench.io import read_json, read_jsonl

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.json").exists():
        raise BenchError(f"{run_dir} is not a run folder (no run.json); make one with `bench run`")
    info = read_json(run_dir / "run.json")
    results = read_jsonl(run_dir / "results.jsonl")
    if args.write_expected:
        return _write_expected(args, run_dir, info, results)
    path = args.expected or info.get("expected_file")
    if not path:
        raise BenchError(f"{run_dir}: the experiment names no expected-values file; pass --expected FILE.toml")
    expected, claims = load_expected_file(path)
    tables = {row.get("table", "") for row in results} | {info.get("config", {}).get("experiment", {}).get("table")}
    comparisons = compare(results, expected, tables)
    verdicts = judge_claims(run_dir, claims, tables)
    if not comparisons and not verdicts:
        raise BenchError(f"{path} has no values or claims for table(s) {', '.join(sorted(t for t in tables if t))} "
                         "of this run")
    for line in value_lines(comparisons) + claim_lines(verdicts):
        print(line)
    statuses = [c.status for c in comparisons] + [v.verdict for v in verdicts]
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    print(f"{len(comparisons)} values checked, {len(verdicts)} claims judged against {path}: "
          + ", ".join(f"{v} {k}" for k, v in counts.items()))
    failing = STRICT_FAILING if args.strict else FAILING
    return 1 if failing & set(statuses) else 0
