"""Metric objects with update/compute/reset (PSNR, SSIM, LPIPS, FID, KID) and one factory.

    metric = create_metric("psnr", channel="y")
    metric.update(pred, gt, ids=[...])   # float32 NCHW RGB in [0,1] or uint8 NCHW
    rows = metric.compute()              # result rows: value, n, ci, protocol id + protocol
    metric.state_dict() / metric.merge(other_state)   # sharded runs: gather states, merge on rank 0

Heavy modules (torch, lpips, pytorch_fid) are imported only when a metric is created.
"""

from __future__ import annotations

import importlib

from bench.errors import BenchError

# name -> ("module:Class", fixed options)
METRICS = {
    "psnr": ("bench.metrics.pixel:PSNR", {}),
    "ssim": ("bench.metrics.pixel:SSIM", {}),
    "lpips": ("bench.metrics.perceptual:LPIPS", {}),
    "fid": ("bench.metrics.fid:InceptionDistances", {"outputs": ("fid",)}),
    "kid": ("bench.metrics.fid:InceptionDistances", {"outputs": ("kid",)}),
}


def list_metrics() -> list[str]:
    return list(METRICS)


def create_metric(name: str, **options):
    """Build metric NAME with its options (e.g. net="vgg", backend="clean-fid", device="cuda")."""
    if name not in METRICS:
        raise BenchError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    target, fixed = METRICS[name]
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**{**fixed, **options})
    except TypeError as exc:
        raise BenchError(f"metric {name!r}: bad option ({exc})") from None
