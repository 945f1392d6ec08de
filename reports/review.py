"""The report's review sections, as plain data for the template: claim verdicts, results by
degradation level, each method's worst images, the per-image browser, input difficulty and the
test sets' provenance (preset parameter ranges, images per condition).

Reads the run folder only (through `bench.by_degradation` and `bench.claims`, which read the same
files); images become small data-URI thumbnails so the report stays one offline file.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.by_degradation import joined_rows, read_by_degradation
from bench.claims import judge_claims
from bench.io import as_float, read_json, read_jsonl
from bench.reports import images, plots, tables

WORST_IMAGES = 3
BROWSER_THUMBS = 400  # rows beyond this keep their link but no thumbnail (the HTML stays small)
BROWSER_THUMB = 72
WORST_THUMB = 112
PRIMARY = ("psnr", "ssim", "lpips")


def claims_section(run_dir: Path, claims, tables_of_run: set[str], seed: int) -> list[dict]:
    return [{"verdict": v.verdict, "text": v.claim.text, "table": v.claim.table, "testset": v.testset,
             "source": v.claim.source, **v.texts()}
            for v in judge_claims(run_dir, claims, tables_of_run, seed=seed)]


def degradation_plots(run_dir: Path, seed: int) -> list[dict]:
    """One figure per (test set, parameter): every metric against the parameter, one line per method."""
    rows = read_by_degradation(run_dir, seed)
    out = []
    for testset, parameter in dict.fromkeys((r["testset"], r["parameter"]) for r in rows):
        mine = [r for r in rows if r["testset"] == testset and r["parameter"] == parameter]
        png = plots.degradation_plot(mine, f"{testset}: metrics by {parameter} (binned, 95% CI)",
                                     tables.metric_label)
        if png:
            out.append({"testset": testset, "parameter": parameter, "uri": images.data_uri(png),
                        "bins": len({r["bin"] for r in mine})})
    return out


def _per_image(run_dir: Path) -> dict[tuple[str, str, str], dict]:
    """(test set, method, id) -> {"scores": {metric: value}, "params": {...}, "testset_id": ...}."""
    out: dict[tuple[str, str, str], dict] = {}
    for row in joined_rows(run_dir):
        key = (row.get("testset", ""), row["method"], row["id"])
        entry = out.setdefault(key, {"scores": {}, "params": row["params"], "testset_id": row.get("testset_id", ""),
                                     "condition": row.get("condition", "")})
        entry["scores"][row["metric"]] = as_float(row["value"])
    return out


def _thumb(path: Path, size: int) -> str | None:
    image = images.open_rgb(path)
    return None if image is None else images.thumbnail(image, size)


def worst_images(run, link, higher_is_better: dict, count: int = WORST_IMAGES) -> list[dict]:
    """Per test set and method, the `count` images with the worst primary metric (PSNR, else SSIM,
    else LPIPS), with LQ / output / GT thumbnails, every score and the degradation parameters."""
    per_image = _per_image(run.dir)
    out = []
    for testset, method in dict.fromkeys((t, m) for t, m, _ in per_image):
        mine = {i: e for (t, m, i), e in per_image.items() if (t, m) == (testset, method)}
        metric = next((p for p in PRIMARY if any(p in e["scores"] for e in mine.values())), None)
        if metric is None:
            continue
        scored = [(e["scores"][metric], i, e) for i, e in mine.items()
                  if math.isfinite(e["scores"].get(metric, math.nan))]
        scored.sort(key=lambda item: item[0], reverse=not higher_is_better.get(metric, True))
        ts_dir = run.testset_dir(testset)
        shown = []
        for _, image_id, entry in scored[:count]:
            paths = {"LQ": ts_dir / "lq" / f"{image_id}.png" if ts_dir else None,
                     method: run.output_path(method, entry["testset_id"], image_id),
                     "GT": ts_dir / "gt" / f"{image_id}.png" if ts_dir else None}
            cells = [{"label": label, "uri": _thumb(path, WORST_THUMB) if path else None,
                      "href": link(path) if path else ""} for label, path in paths.items()]
            shown.append({"id": image_id, "cells": cells, "scores": entry["scores"], "params": entry["params"]})
        out.append({"testset": testset, "method": method, "metric": metric, "images": shown})
    return out


def browser(run, link) -> dict:
    """Rows of the sortable per-image table: test set, method, id, thumbnail, every metric and parameter."""
    per_image = _per_image(run.dir)
    metrics = sorted({m for e in per_image.values() for m in e["scores"]}, key=tables.metric_order)
    params = sorted({p for e in per_image.values() for p in e["params"]})
    rows = []
    for k, ((testset, method, image_id), entry) in enumerate(per_image.items()):
        path = run.output_path(method, entry["testset_id"], image_id)
        rows.append({"testset": testset, "method": method, "id": image_id, "condition": entry["condition"],
                     "thumb": _thumb(path, BROWSER_THUMB) if k < BROWSER_THUMBS else None,
                     "href": link(path) if path.exists() else "",
                     "scores": [entry["scores"].get(m) for m in metrics],
                     "params": [entry["params"].get(p) for p in params]})
    return {"metrics": metrics, "params": params, "rows": rows, "thumbs_limit": BROWSER_THUMBS}


def input_difficulty(run, reference: dict | None) -> list[dict]:
    """PSNR of bicubic upsampling (the input's own fidelity) per test set, and for a reference LQ folder."""
    bicubic = {name for name, m in run.info.get("methods", {}).items() if m.get("method") == "bicubic"}
    rows = [{"source": f"test set {r.get('testset', '')} ({r['method']})", "psnr": as_float(r["value"]),
             "ci": (r.get("ci_low"), r.get("ci_high")), "n": r.get("n")}
            for r in run.results if r["method"] in bicubic and r["metric"] == "psnr"]
    if reference:
        rows.append(reference)
    return rows


def testset_provenance(run) -> list[dict]:
    """Per test set: task, preset and its parameter ranges, and image counts per condition (θ sets
    hold count x conditions images, which is why their tables show n per condition)."""
    out = []
    group_by = {t.get("name"): t.get("group_by", "") for t in run.config.get("testsets", [])}
    for name, entry in run.info.get("testsets", {}).items():
        ts_dir = run.testset_dir(name)
        settings = {}
        if ts_dir and (ts_dir / "testset.json").exists():
            settings = read_json(ts_dir / "testset.json").get("preset_settings", {})
        ranges = {k: _range(v) for k, v in settings.items() if k not in ("name", "version") and v not in (None, "")}
        counts = ""
        key = group_by.get(name)
        if key and ts_dir and (ts_dir / "manifest.jsonl").exists():
            per: dict[str, int] = {}
            for row in read_jsonl(ts_dir / "manifest.jsonl"):
                value = _range(row.get("params", {}).get(key, row.get(key)))
                per[value] = per.get(value, 0) + 1
            counts = "; ".join(f"{key}={v}: {n}" for v, n in per.items())
        out.append({"name": name, "task": entry.get("task", ""), "preset": entry.get("preset", ""),
                    "count": entry.get("count"), "id": entry.get("id", ""), "ranges": ranges, "per_condition": counts})
    return out


def _range(value) -> str:
    """A preset setting as text: (lo, hi) -> 'lo–hi', a fixed (v, v) -> 'v', lists comma-separated."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}–{value[1]:g}"
    if isinstance(value, list):
        return ", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value)
    return str(value)
