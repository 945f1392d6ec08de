"""What every metric shares: the protocol record, input checks, result rows and mergeable state.

A metric's protocol is explicit data (a dict of conventions plus the SHA-256 of every weight file
it uses); its id is a short hash of that dict and goes into every result row, so two numbers are
comparable exactly when their protocol ids are equal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError
from bench.io import quantize_uint8

PROTOCOL_VERSION = 1


def protocol_id(protocol: dict) -> str:
    """Short stable hash of a protocol dict (canonical JSON, sorted keys).

    The "execution" entry (device) is recorded but not hashed: results computed on a CPU and on a GPU
    agree within each metric's tolerance and must stay comparable, as results with other thread counts are.
    """
    protocol = {key: value for key, value in protocol.items() if key != "execution"}
    blob = json.dumps(protocol, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _rgb_batch(images, what: str) -> torch.Tensor:
    """A numpy array or tensor as an (N, 3, H, W) tensor, or a clear error."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(getattr(images, "shape", ()))
        raise BenchError(f"{what}: expected an (N,3,H,W) RGB batch, got shape {shape}")
    return images


def to_uint8_nchw(images, what: str = "image") -> torch.Tensor:
    """float NCHW in [0,1] (rounded like the official `tensor2img`) or uint8 NCHW -> uint8 NCHW tensor."""
    images = _rgb_batch(images, what)
    if images.dtype == torch.uint8:
        return images
    check_finite(images, what)
    return quantize_uint8(images)


def to_float_nchw(images, what: str = "image") -> torch.Tensor:
    """uint8 NCHW (divided by 255, like ToTensor) or float NCHW in [0,1] -> float32 NCHW tensor."""
    images = _rgb_batch(images, what)
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    check_finite(images, what)
    return images.float()


def check_finite(images: torch.Tensor, what: str) -> None:
    if not torch.isfinite(images).all():
        bad = (~torch.isfinite(images)).flatten(1).any(1).nonzero().flatten().tolist()
        raise BenchError(f"{what}: NaN or infinite values in batch item(s) {bad}; fix the method's output")


def check_pair(pred, gt) -> None:
    if tuple(pred.shape) != tuple(gt.shape):
        raise BenchError(
            f"prediction shape {tuple(pred.shape)} differs from ground truth {tuple(gt.shape)}; "
            "resize the prediction to the GT size or choose a resize policy"
        )


def default_ids(start: int, count: int) -> list[str]:
    return [str(i) for i in range(start, start + count)]


def result_row(metric: str, value: float, n: int, protocol: dict, ci: tuple | None = None, **extra) -> dict:
    """One result row as DESIGN.md's results.jsonl expects (value, n, confidence interval, direction, protocol)."""
    from bench.metrics import metric_entry

    row: dict[str, Any] = {"metric": metric, "value": float(value), "n": int(n)}
    if ci is not None:
        row["ci_low"], row["ci_high"], row["ci_level"] = float(ci[0]), float(ci[1]), float(ci[2])
    row["protocol_id"] = protocol_id(protocol)
    row["protocol"] = protocol
    row.update(extra)
    row["higher_is_better"] = metric_entry(metric).higher_is_better
    return row


class _FromRegistry:
    """A class attribute read from the metric's registry entry (one source for code and reports)."""

    def __set_name__(self, owner, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, instance, owner):
        from bench.metrics import metric_entry

        return getattr(metric_entry((instance or owner).name), self.attribute)


class Metric:
    """What every metric shares: registry knowledge, device, bootstrap settings and mergeable state.

    `name` is the registry name; `higher_is_better`, `label` and `decimals` come from its entry.
    State is a dict of lists named by `state_fields`, so merging shards is concatenation (exact);
    subclasses keep everything they need to compute() there. Subclasses define `protocol`,
    `update(pred, gt, ids)` and `compute() -> rows`.
    """

    name = "metric"
    higher_is_better = _FromRegistry()
    label = _FromRegistry()
    decimals = _FromRegistry()
    state_fields: tuple[str, ...] = ("ids",)
    default_ci_resamples = 1000

    def __init__(
        self,
        device="cpu",
        registry=None,
        ci_resamples: int | None = None,
        ci_level: float = 0.95,
        ci_seed: int = 0,
    ):
        from bench.weights import DEFAULT_REGISTRY

        self.device = torch.device(device)
        self.registry = registry or DEFAULT_REGISTRY
        resamples = self.default_ci_resamples if ci_resamples is None else ci_resamples
        self.bootstrap = {"resamples": int(resamples), "level": float(ci_level), "seed": int(ci_seed)}
        self.reset()

    @property
    def protocol(self) -> dict:
        raise NotImplementedError

    def reset(self) -> None:
        self.state: dict[str, list] = {key: [] for key in self.state_fields}

    def per_image(self) -> list[dict]:
        return []

    def state_dict(self) -> dict:
        return {"protocol_id": protocol_id(self.protocol), **{key: list(v) for key, v in self.state.items()}}

    def merge(self, other) -> None:
        """Add another shard's state (a metric of the same protocol, or its state_dict())."""
        state = other.state_dict() if hasattr(other, "state_dict") else other
        if state["protocol_id"] != protocol_id(self.protocol):
            raise BenchError(
                f"{self.name}: cannot merge states of different protocols "
                f"({state['protocol_id']} vs {protocol_id(self.protocol)})"
            )
        for key in self.state_fields:
            self.state[key].extend(state[key])


class PerImageMetric(Metric):
    """Base for metrics defined per image (PSNR, SSIM, LPIPS): the set value is the mean of per-image values.

    Subclasses implement `values(pred, gt) -> list[float]` (pure: no state change, so it may run in a
    worker thread) and `conventions`; `add(values, ids)` records values computed elsewhere.
    """

    state_fields = ("ids", "values")

    @property
    def conventions(self) -> dict:
        """The metric's own entries of its protocol (input, network, weights, options)."""
        raise NotImplementedError

    @property
    def protocol(self) -> dict:
        return {"metric": self.name, "version": PROTOCOL_VERSION, **self.conventions,
                "aggregate": "mean of per-image values", "bootstrap": self.bootstrap}

    def checked_pair(self, pred, gt, convert) -> tuple[torch.Tensor, torch.Tensor]:
        """PRED and GT of one shape, each converted by CONVERT (to_uint8_nchw / to_float_nchw), on the device."""
        check_pair(pred, gt)
        return tuple(convert(images, f"{self.name} {side}").to(self.device)
                     for images, side in ((pred, "prediction"), (gt, "ground truth")))

    def update(self, pred, gt, ids: list[str] | None = None) -> list[float]:
        """Score a batch; returns the per-image values (also kept for compute())."""
        values = self.values(pred, gt)
        self.add(values, ids)
        return values

    def add(self, values: list[float], ids: list[str] | None = None) -> None:
        ids = list(ids) if ids is not None else default_ids(len(self.state["ids"]), len(values))
        if len(ids) != len(values):
            raise BenchError(f"{self.name}: {len(ids)} ids for a batch of {len(values)} images")
        self.state["ids"].extend(ids)
        self.state["values"].extend(values)

    def per_image(self) -> list[dict]:
        pid = protocol_id(self.protocol)
        return [
            {"id": i, "metric": self.name, "value": v, "protocol_id": pid}
            for i, v in zip(self.state["ids"], self.state["values"], strict=True)
        ]

    def compute(self) -> list[dict]:
        from bench.metrics.bootstrap import bootstrap_mean_ci

        if not self.state["values"]:
            raise BenchError(f"{self.name}: no images were scored")
        values = np.asarray(self.state["values"], dtype=np.float64)
        ci = bootstrap_mean_ci(values, **self.bootstrap)
        return [
            result_row(
                self.name,
                values.mean(),
                len(values),
                self.protocol,
                ci=ci,
                n_infinite=int(np.isinf(values).sum()),
            )
        ]
