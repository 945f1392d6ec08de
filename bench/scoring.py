"""Metric assembly for `bench run`: the experiment's metric objects, built once per run, merged over ranks.

The runner feeds them (prediction, GT) batches; `results` merges every rank's state and returns the
result rows (with confidence intervals and protocol ids) and the per-image values.
"""

from __future__ import annotations

import json
from typing import Any

from bench.experiment import ExperimentConfig
from bench.outputs import is_missing_weights


class RunMetrics:
    def __init__(self, config: ExperimentConfig, device: str, log=print):
        self.config = config
        self.device = device
        self.log = log
        self._cache: dict[str, Any] = {}

    def usable(self, info: dict) -> list[str]:
        """Metric names this run can score; `info` gets their protocols, notes on unavailable optional
        ones, and a failure for each named metric whose weights are missing (the others are still scored).
        Any other problem with a named metric stops the run before any work."""
        names = list(self.config.experiment.metrics)
        optional = [m for m in self.config.experiment.optional_metrics if m not in names]
        usable = []
        for name in names + optional:
            try:
                for metric in self.make([name]):
                    info["protocols"][name] = metric.protocol
                usable.append(name)
            except Exception as exc:  # noqa: BLE001 - an optional metric is reported, the run goes on
                missing = is_missing_weights(exc)
                if name in names and not missing:
                    raise
                if name in names:
                    info["failures"].append({"method": "", "testset": "", "stage": f"metric {name}", "metric": name,
                                             "error": str(exc), "traceback": ""})
                    self.log(f"  metric {name}: FAILED, its weights are missing ({exc})")
                    continue
                info["notes"].append({
                    "kind": "weights-missing" if missing else "metric-unavailable", "subject": name.upper(),
                    "metric": name, "title": "weights not found: how to get them" if missing else "metric unavailable",
                    "message": f"{exc}. Scores for {name.upper()} are left out of this run."})
                self.log(f"  metric {name}: not available ({exc})")
        return usable

    def make(self, names: list[str]) -> list:
        """Metric objects for `names`, built once per run (weights load once) and reset for each use."""
        made = []
        wanted = [n for n in names if not (n == "kid" and "fid" in names)]  # one Inception pass serves both
        for name in wanted:
            options = dict(self.config.metric_options.get(name, {}))
            if name == "fid" and "kid" in names:
                options.setdefault("outputs", ("fid", "kid"))
            key = json.dumps([name, options], sort_keys=True, default=str)
            metric = self._cache.get(key)
            if metric is None:
                metric = self._cache[key] = self._create(name, options)
            metric.reset()
            made.append(metric)
        return made

    def _create(self, name: str, options: dict):
        import importlib
        import inspect

        from bench import metrics as registry

        params = {}
        if name in getattr(registry, "METRICS", {}):
            module, _, cls = registry.METRICS[name][0].partition(":")
            params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        extra = {"device": self.device, "ci_resamples": self.config.experiment.bootstrap,
                 "ci_seed": self.config.experiment.seed}
        for key, value in extra.items():  # only the settings this metric takes (PSNR has no device)
            if key in params or (accepts_any and key.startswith("ci_")):
                options.setdefault(key, value)
        return registry.create_metric(name, **options)

    def results(self, names: list[str], metrics: list, dist) -> tuple[list[dict], list[dict]]:
        """Result rows and per-image values of `metrics` after every rank's updates (rank 0; others get [])."""
        states = dist.gather([m.state_dict() for m in metrics])
        if not dist.main:
            return [], []
        if dist.enabled:
            metrics = self.make(names)  # the same objects, reset: merge every rank's state in rank order
            for rank_states in states:
                for metric, rank_state in zip(metrics, rank_states, strict=True):
                    metric.merge(rank_state)
        rows, per_image = [], []
        for metric in metrics:
            better = getattr(metric, "higher_is_better", None)
            for row in metric.compute():
                row.setdefault("higher_is_better", _better(row["metric"], better))
                rows.append(row)
            if hasattr(metric, "per_image"):
                per_image += metric.per_image()
        return rows, per_image


def _better(metric: str, declared: bool | None) -> bool | None:
    if metric in ("fid", "kid", "lpips"):
        return False
    if metric in ("psnr", "ssim"):
        return True
    return declared
