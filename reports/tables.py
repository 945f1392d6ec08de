"""Paper tables from result rows: published vs reproduced, CI, difference, tolerance mark, best value.

Input is plain data (rows of `results.jsonl` and `bench.expected.Expected` entries), output is a
list of `PaperTable`s that the HTML template renders and `exports()` turns into Markdown/LaTeX with
pandas. Reads result files only; never imports `bench.methods`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.expected import Expected, judge, result_ci
from bench.io import as_float
from bench.metrics import METRICS, MetricEntry

# Rows of the run's analyses (not metrics, so not in the metric registry); metrics come from bench.metrics.
ANALYSES = {"theta": MetricEntry("", "θ (DAFI_5)", 3, None), "params_M": MetricEntry("", "Parameters (M)", 2, None)}
ARROWS = {True: "↑", False: "↓", None: ""}


def _known(metric: str) -> MetricEntry | None:
    return METRICS.get(metric) or ANALYSES.get(metric)


def metric_label(metric: str, higher_is_better: bool | None = None) -> str:
    known = _known(metric)
    label = known.label if known else metric
    if higher_is_better is None and known:
        higher_is_better = known.higher_is_better
    return f"{label} {ARROWS[higher_is_better]}".strip()


def fmt(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    known = _known(metric)
    return f"{value:.{known.decimals if known else 4}f}"


@dataclass
class Cell:
    metric: str
    value: float | None = None  # reproduced
    ci: tuple[float, float] | None = None
    spread: float | None = None
    n: int | None = None
    expected: Expected | None = None
    status: str = ""  # reproduced / better / worse / missing / "" (nothing published)
    best: bool = False

    @property
    def difference(self) -> float | None:
        if self.value is None or self.expected is None:
            return None
        return self.value - self.expected.value

    def text(self, what: str) -> str:
        if what == "value":
            return fmt(self.value, self.metric)
        if what == "published":
            return fmt(self.expected.value if self.expected else None, self.metric)
        if what == "tolerance":
            return "±" + fmt(self.expected.tolerance, self.metric) if self.expected else ""
        if what == "difference":
            diff = self.difference
            return "" if diff is None else ("+" if diff >= 0 else "") + fmt(diff, self.metric)
        if what == "ci":
            return "" if not self.ci else f"[{fmt(self.ci[0], self.metric)}, {fmt(self.ci[1], self.metric)}]"
        if what == "spread":
            return "" if self.spread is None else "sd " + fmt(self.spread, self.metric)
        raise KeyError(what)


MARKS = {"reproduced": ("✓", "reproduced: within tolerance, or the tolerance-widened CI holds the published value"),
         "better": ("▲", "better than published beyond tolerance"),
         "worse": ("✗", "outside tolerance, worse than published"), "missing": ("?", "no reproduced value"),
         "": ("", "")}


@dataclass
class PaperTable:
    key: str  # table id, e.g. table1
    testset: str
    metrics: list[str]
    rows: list[tuple[str, str]]  # (method, condition)
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)  # (method, condition, metric)
    higher_is_better: dict[str, bool | None] = field(default_factory=dict)

    @property
    def has_published(self) -> bool:
        return any(c.expected is not None for c in self.cells.values())

    @property
    def has_conditions(self) -> bool:
        return any(condition for _, condition in self.rows)

    def cell(self, method: str, condition: str, metric: str) -> Cell:
        return self.cells.get((method, condition, metric)) or Cell(metric)

    def frame(self):
        """A pandas DataFrame: rows (method[, condition]), columns (metric, published|reproduced|Δ|CI)."""
        import pandas as pd

        columns = pd.MultiIndex.from_tuples(
            [(metric_label(m, self.higher_is_better.get(m)), part) for m in self.metrics
             for part in (["published", "reproduced", "Δ", "95% CI"] if self.has_published
                          else ["reproduced", "95% CI"])])
        index = [f"{m} ({c})" if c else m for m, c in self.rows]
        data = []
        for method, condition in self.rows:
            line = []
            for metric in self.metrics:
                cell = self.cell(method, condition, metric)
                mark = MARKS[cell.status][0]
                value = cell.text("value") + (" *" if cell.best else "")
                if self.has_published:
                    line += [cell.text("published"), f"{value} {mark}".strip(), cell.text("difference"),
                             cell.text("ci")]
                else:
                    line += [value, cell.text("ci")]
            data.append(line)
        return pd.DataFrame(data, index=pd.Index(index, name="method"), columns=columns)


def build_tables(results: list[dict], expected: list[Expected], table: str, metrics=None) -> list[PaperTable]:
    """One table per test set of the run (plus entries published but not reproduced).

    `metrics`: if given, only published entries of these metrics are shown.
    """
    published = {e.key: e for e in expected if e.table == table and (metrics is None or e.metric in metrics)}
    tables: dict[str, PaperTable] = {}
    for row in results:
        name = row.get("testset", "")
        t = tables.get(name)
        if t is None:
            t = tables[name] = PaperTable(key=table, testset=name, metrics=[], rows=[])
        if row["metric"] not in t.metrics:
            t.metrics.append(row["metric"])
        rk = (row["method"], row.get("condition", ""))
        if rk not in t.rows:
            t.rows.append(rk)
        t.higher_is_better[row["metric"]] = row.get("higher_is_better")
        value = as_float(row["value"])
        ci = result_ci(row)
        spread = as_float(row["spread"]) if row.get("spread") is not None else None
        entry = published.get((table, rk[0], row["metric"], rk[1], name)) or \
            published.get((table, rk[0], row["metric"], rk[1], ""))
        t.cells[(*rk, row["metric"])] = Cell(row["metric"], value, ci, spread, row.get("n"), entry,
                                             judge(entry, value, ci) if entry else "")
    # published rows that the run did not reproduce are shown as missing (in their test set's table)
    if published:
        if not tables:
            tables[""] = PaperTable(key=table, testset="", metrics=[], rows=[])
        first = next(iter(tables.values()))
        for (_, method, metric, condition, testset), entry in published.items():
            target = tables.get(testset, first) if testset else first
            candidates = [target] if testset else list(tables.values())
            if any((method, condition, metric) in t.cells for t in candidates):
                continue
            if metric not in target.metrics:
                target.metrics.append(metric)
            if (method, condition) not in target.rows:
                target.rows.append((method, condition))
            target.higher_is_better.setdefault(metric, {"higher": True, "lower": False}.get(entry.direction))
            target.cells[(method, condition, metric)] = Cell(metric, None, expected=entry, status="missing")
    for t in tables.values():
        t.metrics.sort(key=metric_order)
        _mark_best(t)
    return list(tables.values())


def metric_order(metric: str) -> int:
    """Column order: the registry's (then the analyses'), unknown metrics last."""
    order = [*METRICS, *ANALYSES]
    return order.index(metric) if metric in order else len(order)


def _mark_best(t: PaperTable) -> None:
    for metric in t.metrics:
        better = t.higher_is_better.get(metric)
        if better is None:
            continue
        cells = [c for (m, cond, k), c in t.cells.items() if k == metric and c.value is not None
                 and math.isfinite(c.value)]
        if len(cells) < 2:
            continue
        best = max(c.value for c in cells) if better else min(c.value for c in cells)
        for c in cells:
            c.best = c.value == best


def to_markdown(frame) -> str:
    """GitHub Markdown from a DataFrame (no `tabulate` dependency)."""
    headers = ["method"] + [" ".join(str(p) for p in col if p) for col in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for index, row in frame.iterrows():
        cells = [str(index)] + [str(v).replace("|", "\\|") for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def exports(tables: list[PaperTable], title: str, skipped: dict[str, list[str]] | None = None) -> dict[str, str]:
    """{"md": ..., "tex": ...}: every table, Markdown via our writer, LaTeX via pandas; Markdown also
    lists the methods skipped for missing weights (a table without them would hide that)."""
    md, tex = [f"# {title}\n"], []
    for t in tables:
        caption = f"{t.key} — test set {t.testset}" if t.testset else t.key
        frame = t.frame()
        md += [f"## {caption}\n", to_markdown(frame)]
        if t.has_published:
            md.append("\n✓ reproduced (within tolerance, or the tolerance-widened CI holds the published value), "
                      "✗ worse than published beyond tolerance, ▲ better; * best per column.\n")
        tex.append(frame.to_latex(caption=caption.replace("_", r"\_"), escape=True, multicolumn_format="c"))
    if skipped:
        md.append("## Methods not run (weights not found)\n")
        md += [f"- test set {testset}: {', '.join(methods)}" for testset, methods in skipped.items()]
        md.append("")
    return {"md": "\n".join(md), "tex": "\n".join(tex)}
