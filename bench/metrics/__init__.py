"""The metric registry (plain data, importable without torch) and the one factory, `build_metrics`.

    metrics = build_metrics(["psnr", "ssim", "fid", "kid"], device="cuda")   # fid and kid: one object
    metric = metrics["psnr"]
    metric.update(pred, gt, ids=[...])   # float32 NCHW RGB in [0,1] or uint8 NCHW
    rows = metric.compute()              # result rows: value, n, ci, higher_is_better, protocol id + protocol
    metric.state_dict() / metric.merge(other_state)   # sharded runs: gather states, merge on rank 0

Adding a metric is one module (a `bench.metrics.base.Metric` subclass) plus one `MetricEntry` in
`METRICS`. Reports read labels, decimals and directions from here, so they never import torch;
heavy modules (torch, lpips, pytorch_fid) are imported only when a metric is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.messages import pick


@dataclass(frozen=True)
class MetricEntry:
    """What a metric is, as data: its class ("module:Class"), fixed options and how tables show it.

    A class that can produce several rows in one pass (FID and KID from one Inception pass) takes an
    `outputs` option; entries with the same `target` and an `outputs` option are built as one object.
    """

    target: str
    label: str
    decimals: int
    higher_is_better: bool | None
    options: dict[str, Any] = field(default_factory=dict)


# Registry order is the column order of the report's tables.
METRICS: dict[str, MetricEntry] = {
    "psnr": MetricEntry("bench.metrics.pixel:PSNR", "PSNR", 2, True),
    "ssim": MetricEntry("bench.metrics.pixel:SSIM", "SSIM", 4, True),
    "fid": MetricEntry("bench.metrics.fid:InceptionDistances", "FID", 2, False, {"outputs": ("fid",)}),
    "kid": MetricEntry("bench.metrics.fid:InceptionDistances", "KID", 4, False, {"outputs": ("kid",)}),
    "lpips": MetricEntry("bench.metrics.perceptual:LPIPS", "LPIPS", 4, False),
}


def list_metrics() -> list[str]:
    return list(METRICS)


def metric_entry(name: str) -> MetricEntry:
    """The registry entry of metric NAME, or a clear error listing the known ones."""
    return pick(METRICS, name, "metric")


def _metric_class(entry: MetricEntry):
    module_name, class_name = entry.target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_metric(name: str, **options):
    """Build metric NAME with its options (e.g. net="vgg", backend="clean-fid", device="cuda")."""
    entry = metric_entry(name)
    try:
        return _metric_class(entry)(**{**entry.options, **options})
    except TypeError as exc:
        raise BenchError(f"metric {name!r}: bad option ({exc})") from None


def build_metrics(names, device="cpu", options: dict | None = None, registry=None,
                  ci_resamples: int | None = None, ci_seed: int | None = None) -> dict:
    """The metric objects of one scoring pass, for `bench run` and `bench evaluate` alike.

    names: registry names, in the order rows should come out. Returns name -> metric object; names
    served by one multi-output object (fid and kid share one Inception pass) map to the same object,
    so iterate `dict.fromkeys(result.values())` to visit each object once.
    device, registry (weights), ci_resamples, ci_seed: settings every metric takes (the base class
    holds them); None keeps the metric's own default. options: per-metric keyword options
    ({"lpips": {"net": "vgg"}, "fid": {"backend": "clean-fid"}}), which override those settings.
    """
    options = options or {}
    common = {"device": device, "registry": registry, "ci_resamples": ci_resamples, "ci_seed": ci_seed}
    common = {key: value for key, value in common.items() if value is not None}
    names = list(dict.fromkeys(names))
    metrics: dict[str, Any] = {}
    for name in names:
        if name in metrics:
            continue
        entry = metric_entry(name)
        settings = {**common, **options.get(name, {})}
        group = [name]
        if "outputs" in entry.options:  # every requested name this class serves comes from one object
            shared = [(n, metric_entry(n)) for n in names]
            group = [n for n, other in shared if other.target == entry.target and "outputs" in other.options]
            for other in group:
                settings.update(options.get(other, {}))
            settings["outputs"] = tuple(out for n in group for out in METRICS[n].options["outputs"])
        metric = create_metric(name, **settings)
        metrics.update(dict.fromkeys(group, metric))
    return metrics
