"""`render_report(run_dir)`: one self-contained HTML file (plus Markdown and LaTeX tables) from a run.

Reads only the run's files (run.json, results.jsonl, per_image.jsonl, analysis.jsonl,
by_degradation.jsonl, features/, outputs and the test sets they point to) and the expected-values
file named in run.json (published values and claims). The review sections (claims, results by
degradation level, worst images, per-image browser) come from `bench.reports.review`. Jinja2 renders with
autoescaping on, so method labels and file names are always escaped; images are embedded as
thumbnails and link to the full-resolution files by relative path.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import quote

from bench.errors import BenchError
from bench.expected import load_expected_file
from bench.io import atomic_write_text, read_json, read_jsonl
from bench.reports import images, plots, review, tables
from bench.store import PER_IMAGE_FILE, RESULTS_FILE, RUN_FILE, slug

TEMPLATES = Path(__file__).with_name("templates")
DEFAULT_CROPS = {"eyes": [0.22, 0.36, 0.78, 0.52], "mouth": [0.32, 0.64, 0.68, 0.80]}


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = tables.fmt
    env.filters["metric_label"] = tables.metric_label
    return env


def _link(path: Path, report_dir: Path) -> str:
    try:
        rel = os.path.relpath(path, report_dir)
    except ValueError:  # another drive on Windows
        rel = str(path)
    return quote(rel.replace(os.sep, "/"))


class _Run:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        if not (run_dir / RUN_FILE).exists():
            raise BenchError(f"{run_dir} is not a run folder (no {RUN_FILE}); make one with `bench run`")
        self.info = read_json(run_dir / RUN_FILE)
        self.results = read_jsonl(run_dir / RESULTS_FILE)
        self.per_image = read_jsonl(run_dir / PER_IMAGE_FILE)
        self.analysis = read_jsonl(run_dir / "analysis.jsonl")
        self.config = self.info.get("config", {})
        self.table = self.config.get("experiment", {}).get("table", "")

    def expected(self):
        """(values, claims, problem): the expected-values file named in run.json, if any."""
        path = self.info.get("expected_file")
        if not path:
            return [], [], None
        if not Path(path).exists():
            return [], [], f"expected-values file {path} is missing; published values and claims are not shown"
        return (*load_expected_file(path), None)

    def testset_dir(self, name: str) -> Path | None:
        entry = self.info.get("testsets", {}).get(name)
        return Path(entry["dir"]) if entry and entry.get("dir") else None

    def output_path(self, method: str, testset_id: str, image_id: str) -> Path:
        return self.dir / "outputs" / slug(method) / testset_id / f"{image_id}.png"


def _preset_docs() -> dict:
    """Preset name -> its one-line reason, so the provenance says why each test set was degraded so."""
    from bench.degradations.presets import PRESET_DOCS

    return PRESET_DOCS


def _grids(run: _Run, report_dir: Path, crops: dict) -> list[dict]:
    count = run.config.get("experiment", {}).get("grid_images", 4)
    methods = run.config.get("methods", [])
    grids = []
    for name, entry in run.info.get("testsets", {}).items():
        ts_dir, ts_id = run.testset_dir(name), entry.get("id", "")
        if ts_dir is None or not count:
            continue
        shown = [m for m in methods if m.get("restore", True) and (not m["testsets"] or name in m["testsets"])
                 and run.info.get("methods", {}).get(m["name"], {}).get("status") != "skipped"]
        if not shown:
            continue
        ids = [row["id"] for row in read_jsonl(ts_dir / "manifest.jsonl")][:count]
        columns = ["LQ"] + [m["name"] for m in shown] + ["GT"]
        rows = []
        for image_id in ids:
            paths = [ts_dir / "lq" / f"{image_id}.png"]
            paths += [run.output_path(m["name"], ts_id, image_id) for m in shown]
            paths += [ts_dir / "gt" / f"{image_id}.png"]
            cells = []
            for k, path in enumerate(paths):
                tile = images.tile(path, crops, nearest=(k == 0))
                cells.append({"tile": tile, "href": _link(path, report_dir), "name": path.name})
            rows.append({"id": image_id, "cells": cells})
        grids.append({"testset": name, "testset_id": ts_id, "task": entry.get("task", ""), "columns": columns,
                      "rows": rows, "crops": list(crops)})
    return grids


def _dissection(run: _Run, report_dir: Path) -> list[dict]:
    limit = run.config.get("report", {}).get("dissection_images", 1)
    blocks: dict[tuple[str, str, str], list[dict]] = {}
    for row in run.analysis:
        if row.get("kind") != "dissection":
            continue
        key = (row["method"], row["testset"], row["source_id"])
        blocks.setdefault(key, []).append(row)
    out, shown = [], {}
    for (method, testset, source_id), rows in blocks.items():
        if shown.get((method, testset), 0) >= limit:
            continue
        shown[(method, testset)] = shown.get((method, testset), 0) + 1
        rows.sort(key=lambda r: plots.condition_number(r.get("condition", "")) or 0)
        lines = []
        for row in rows:
            cells = []
            for part in ("X", "Y", "Y_GPB", "Y_IFE"):
                path = run.dir / row["files"][part]
                cells.append({"label": part, "tile": images.tile(path, {}, nearest=(part == "X")),
                              "href": _link(path, report_dir)})
            lines.append({"condition": row.get("condition", ""), "theta": row.get("theta"), "cells": cells})
        out.append({"method": method, "testset": testset, "source_id": source_id, "lines": lines})
    return out


def _distributions(run: _Run) -> list[dict]:
    out = []
    for testset in run.info.get("testsets", {}):
        rows = [r for r in run.per_image if r.get("testset") == testset]
        for metric in sorted({r["metric"] for r in rows}):
            png = plots.distribution_plot(rows, metric, f"{tables.metric_label(metric)} per image — {testset}")
            if png:
                out.append({"testset": testset, "metric": metric, "uri": images.data_uri(png)})
    return out


def _theta(run: _Run, expected) -> dict | None:
    published = {}
    theta_tables = {r.get("table") for r in run.results if r["metric"] == "theta"} | {run.table}
    for entry in expected:
        if entry.metric == "theta" and entry.table in theta_tables:
            number = plots.condition_number(entry.condition)
            if number is not None:
                published[number] = entry.value
    png = plots.theta_plot(run.per_image, run.results, published)
    if png is None:
        return None
    rows = []
    for r in sorted({plots.condition_number(x["condition"]) for x in run.results if x["metric"] == "theta"}
                    | set(published)):
        reproduced = [x for x in run.results if x["metric"] == "theta" and
                      plots.condition_number(x.get("condition", "")) == r]
        rows.append({"r": f"{r:g}", "published": published.get(r),
                     "reproduced": [(x["method"], x["value"], x.get("spread"), x.get("n")) for x in reproduced]})
    return {"uri": images.data_uri(png), "rows": rows}


def _note_list(info: dict) -> list[dict]:
    return list(info.get("notes", []))


def _parameter_rows(run: _Run) -> list[dict]:
    """Parameter counts of the loaded models (run.json), as result-like rows for their own table."""
    methods = run.info.get("methods", {})
    return [{"method": name, "metric": "params_M", "value": m["params"] / 1e6, "testset": "", "n": None,
             "higher_is_better": None} for name, m in methods.items() if m.get("params") is not None]


def render_report(run_dir: str | Path, out: str | Path | None = None, reference: dict | None = None) -> Path:
    """Write RUN_DIR/report/index.html (or `out`) plus tables.md and tables.tex next to it.

    `reference`: input difficulty of a reference LQ folder ({"source", "psnr", "ci", "n"}), shown
    beside the run's bicubic input PSNR."""
    run_dir = Path(run_dir)
    run = _Run(run_dir)
    out = Path(out) if out else run_dir / "report" / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    report_dir = out.parent.resolve()
    expected, claims, expected_problem = run.expected()
    crops = run.config.get("report", {}).get("crops") or DEFAULT_CROPS
    title = run.config.get("experiment", {}).get("title") or run.info.get("experiment", "run")
    seed = run.config.get("experiment", {}).get("seed", 0)
    scored = [r for r in run.results if r["metric"] not in ("theta", "params_M")]
    other = {e.metric for e in expected} - {"theta", "params_M"}
    paper_tables = tables.build_tables(scored, expected, run.table, other) if scored or expected else []
    paper_tables = [t for t in paper_tables if t.rows]
    theta = _theta(run, expected)
    theta_rows = [r for r in run.results if r["metric"] == "theta"]
    theta_tables = [t for t in tables.build_tables(theta_rows, expected, run.table, {"theta"}) if t.rows] \
        if theta_rows else []
    parameter_tables = tables.build_tables(_parameter_rows(run), [], "parameters")
    notes = _note_list(run.info)
    missing_metrics = [n["metric"] for n in notes if n.get("kind") == "weights-missing" and n.get("metric")]
    skipped = {}  # test set -> methods skipped for missing weights
    for spec in run.config.get("methods", []):
        if run.info.get("methods", {}).get(spec["name"], {}).get("status") == "skipped":
            for name in spec["testsets"] or list(run.info.get("testsets", {})):
                skipped.setdefault(name, []).append(spec["name"])
    exports = tables.exports(paper_tables + theta_tables + parameter_tables, title, skipped)
    atomic_write_text(out.with_name("tables.md"), exports["md"])
    atomic_write_text(out.with_name("tables.tex"), exports["tex"])
    tables_of_run = {r.get("table", "") for r in run.results} | {run.table}
    higher_is_better = {r["metric"]: r.get("higher_is_better") for r in run.results}

    def link(path: Path) -> str:
        return _link(path, report_dir)

    context = {
        "title": title,
        "description": run.config.get("experiment", {}).get("description", ""),
        "run": run.info,
        "run_dir": str(run_dir.resolve()),
        "tables": paper_tables,
        "theta_tables": theta_tables,
        "parameter_tables": parameter_tables,
        "has_published": any(t.has_published for t in paper_tables + theta_tables),
        "claims": review.claims_section(run.dir, claims, tables_of_run, seed),
        "degradation": review.degradation_plots(run.dir, seed),
        "worst": review.worst_images(run, link, higher_is_better),
        "browser": review.browser(run, link),
        "difficulty": review.input_difficulty(run, reference),
        "testset_provenance": review.testset_provenance(run),
        "marks": tables.MARKS,
        "theta": theta,
        "dissection": _dissection(run, report_dir),
        "grids": _grids(run, report_dir, crops),
        "distributions": _distributions(run),
        "failures": run.info.get("failures", []),
        "notes": notes,
        "missing_metrics": missing_metrics,
        "skipped": skipped,
        "expected_problem": expected_problem,
        "exports": {"md": "tables.md", "tex": "tables.tex"},
        "isfinite": math.isfinite,
        "zip": zip,
        "preset_docs": _preset_docs(),
    }
    html = _environment().get_template("report.html.j2").render(**context)
    atomic_write_text(out, html)
    return out
