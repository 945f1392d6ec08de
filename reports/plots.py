"""Matplotlib figures for the report, returned as PNG bytes (embedded as data URIs).

`theta_plot`: θ of DAFI_5 versus the downsampling rate r, every image as a dot, the mean with its
bootstrap interval, and Table 4's published θ. `distribution_plot`: per-image values of one metric
per method (box + dots). `degradation_plot`: metric against a degradation parameter, one line per method
with its CI band. The Agg backend is selected explicitly, so no display is needed.
"""

from __future__ import annotations

import io
import re

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def condition_number(condition: str) -> float | None:
    """'r=16' -> 16.0; anything without a number -> None."""
    match = re.search(r"(-?\d+(?:\.\d+)?)", condition or "")
    return float(match.group(1)) if match else None


def theta_plot(per_image: list[dict], results: list[dict], published: dict[float, float]) -> bytes | None:
    """per_image/results: rows with metric 'theta' and a condition 'r=<int>'. None if there are none."""
    rows = [r for r in per_image if r["metric"] == "theta" and condition_number(r.get("condition", ""))]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    rng = np.random.default_rng(0)  # jitter only, for legibility
    methods = sorted({r["method"] for r in rows})
    for k, method in enumerate(methods):
        mine = [r for r in rows if r["method"] == method]
        rs = np.array([condition_number(r["condition"]) for r in mine])
        values = np.array([float(r["value"]) for r in mine])
        jitter = np.exp2(rng.uniform(-0.08, 0.08, len(rs)) + 0.05 * (k - (len(methods) - 1) / 2))
        ax.scatter(rs * jitter, values, s=10, alpha=0.35, label=f"{method}: per image")
        summary = sorted(
            (condition_number(r["condition"]), float(r["value"]), r.get("ci_low"), r.get("ci_high"))
            for r in results if r["metric"] == "theta" and r["method"] == method
            and condition_number(r.get("condition", "")) is not None
        )
        if summary:
            xs = np.array([s[0] for s in summary])
            ys = np.array([s[1] for s in summary])
            low = np.array([s[2] if s[2] is not None else s[1] for s in summary], dtype=float)
            high = np.array([s[3] if s[3] is not None else s[1] for s in summary], dtype=float)
            ax.errorbar(xs, ys, yerr=[ys - low, high - ys], marker="o", capsize=4, lw=1.8,
                        label=f"{method}: mean, 95% CI")
    if published:
        xs = sorted(published)
        ax.plot(xs, [published[x] for x in xs], "s--", color="crimson", label="paper, Table 4 (one image)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("downsampling rate r")
    ax.set_ylabel("θ = mean of mask₅ (GAN-prior share)")
    ticks = sorted({condition_number(r["condition"]) for r in rows} | set(published))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def distribution_plot(per_image: list[dict], metric: str, title: str) -> bytes | None:
    """Box plot with dots of one metric's per-image values, one box per method."""
    groups: dict[str, list[float]] = {}
    for row in per_image:
        if row["metric"] == metric:
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                continue
            if np.isfinite(value):
                groups.setdefault(row["method"], []).append(value)
    if not groups:
        return None
    plt = _pyplot()
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(3.2, 1.3 * len(names) + 1.5), 3.2))
    ax.boxplot([groups[n] for n in names], showfliers=False)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names, 1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(groups[name])), groups[name], s=9, alpha=0.5)
    ax.set_xticks(range(1, len(names) + 1), [n if len(n) < 22 else n[:20] + "…" for n in names],
                  rotation=15, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def degradation_plot(rows: list[dict], title: str, label=str) -> bytes | None:
    """One panel per metric: the metric's bin means against the parameter (bin median), one line per
    method with its 95% CI as a band. `rows` are by-degradation rows of one test set and parameter."""
    metrics = sorted({r["metric"] for r in rows})
    if not metrics:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics) + 0.6, 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for method in sorted({r["method"] for r in rows if r["metric"] == metric}):
            mine = sorted((r for r in rows if r["metric"] == metric and r["method"] == method), key=lambda r: r["bin"])
            xs = np.array([r["x_median"] for r in mine])
            ax.plot(xs, [r["mean"] for r in mine], marker="o", ms=3, lw=1.5, label=method)
            ax.fill_between(xs, [r["ci_low"] for r in mine], [r["ci_high"] for r in mine], alpha=0.2)
        ax.set_title(label(metric), fontsize=9)
        ax.set_xlabel(rows[0]["parameter"], fontsize=8)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle(title, fontsize=9, y=1.04)
    return _png(fig)
