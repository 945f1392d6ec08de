"""The network and its factory: imported only when the method is created."""

import torch
import torch.nn.functional as F

from bench.methods import Method


class UnsharpMask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.amount = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x):  # x: RGB in [-1, 1]
        blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return x + self.amount * (x - blurred)


def create(spec, weights=None, device="cpu"):
    model = UnsharpMask()
    if weights is not None:  # a path or an already loaded dict
        state = weights if isinstance(weights, dict) else torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return Method(spec, model, device, protocol={"amount": float(model.amount)})
