"""The README's "Add your metric" example, run by tests/test_metrics_registry.py: mean absolute error."""

import torch

from bench.metrics.base import PerImageMetric, check_pair, to_uint8_nchw


class MAE(PerImageMetric):
    """Mean absolute difference of the uint8-rounded images, per image (lower is better)."""

    name = "mae"  # label, decimals and direction come from its registry entry

    @property
    def protocol(self) -> dict:
        return {"metric": self.name, "input": "uint8-rounded RGB", "bootstrap": self.bootstrap}

    @torch.no_grad()
    def values(self, pred, gt) -> list[float]:
        check_pair(pred, gt)
        p, g = (to_uint8_nchw(x, "mae input").to(self.device).float() for x in (pred, gt))
        return (p - g).abs().flatten(1).mean(1).double().cpu().tolist()
