"""Metric assembly for `bench run`: the experiment's metric objects, built once per run, merged over ranks.

The runner feeds them (prediction, GT) batches; `results` merges every rank's state and returns the
result rows (with confidence intervals and protocol ids) and the per-image values.
"""

from __future__ import annotations

import json
from typing import Any

from bench.errors import MissingWeightsError
from bench.experiment import ExperimentConfig


class RunMetrics:
    """`registry`: where metric weights are looked up (None: the default; benchmarks pass stand-ins)."""

    def __init__(self, config: ExperimentConfig, device: str, log=print, registry=None):
        self.config = config
        self.device = device
        self.registry = registry
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
                missing = isinstance(exc, MissingWeightsError)
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
        """Metric objects for `names` (bench.metrics.build_metrics), built once per run and reset for each use."""
        from bench.metrics import build_metrics

        key = json.dumps(names)
        metrics = self._cache.get(key)
        if metrics is None:
            built = build_metrics(names, device=self.device, options=self.config.metric_options, registry=self.registry,
                                  ci_resamples=self.config.experiment.bootstrap, ci_seed=self.config.experiment.seed)
            metrics = self._cache[key] = list(dict.fromkeys(built.values()))
        for metric in metrics:
            metric.reset()
        return metrics

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
            rows += metric.compute()  # each row carries its metric's higher_is_better (registry)
            per_image += metric.per_image()
        return rows, per_image
