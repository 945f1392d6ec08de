"""VGG16 perceptual loss as the official Panini config ran it (spec 6.1).

torchvision `vgg16().features[:22]`: the feature is conv4_3 (index 21) *before* its ReLU. Inputs are
the generator's [-1, 1] images normalised with ImageNet mean/std as if they were [0, 1] (mmedit's
`use_input_norm=True` with `norm_img=False`); the loss is the MSE of the two feature maps, the GT
side detached. VGG weights are frozen and belong to no optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONV4_3 = 21  # torchvision vgg16().features index of conv4_3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_features() -> nn.Sequential:
    """torchvision's vgg16 `features[:22]` (same indices and keys), without building the 120M-parameter
    classifier we never use; convs initialised as torchvision does (kaiming normal, fan_out, zero bias)."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)[: CONV4_3 + 1]
    for module in features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return features


def load_vgg16_features(source: str, seed: int = 0) -> nn.Sequential:
    """features[:22] from "registry" (torchvision's vgg16 file), a file path, or "random" (seeded)."""
    with torch.random.fork_rng(devices=[]):  # torchvision's init draws from the global RNG
        torch.manual_seed(seed)
        features = _vgg16_features()
    if source == "random":
        return features
    if source == "registry":
        from bench.weights import resolve

        source = str(resolve("vgg16"))
    from bench.methods.checkpoints import load_strict, read_checkpoint, take_prefix

    state = read_checkpoint(source, f"VGG16 weights {source}")
    state = take_prefix(state, "features.")
    state = {k: v for k, v in state.items() if int(k.split(".")[0]) <= CONV4_3}
    return load_strict(features, state, f"VGG16 weights {source} (torchvision layout, features.*)")


class PerceptualLoss(nn.Module):
    """MSE(phi(out), phi(gt)) with phi = VGG16 conv4_3 before ReLU, on [-1, 1] images."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # no dropout / BN here, but keep it in eval for clarity

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def forward(self, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.phi(out), self.phi(gt.detach()))
