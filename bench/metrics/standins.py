"""Seeded random-but-realistic stand-ins for the metric networks, under the libraries' own file names.

Plain random init makes Inception's pool3 features vanish (every FID ~ 0, any test would pass), so the
FID network's BatchNorm statistics are calibrated on a few smooth random images first
(../shared/spec/metrics.md section 1.4). Nothing here downloads anything. For offline tests and
benchmarks only: numbers made with them are never real scores.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from bench.weights import DEFAULT_REGISTRY, Registry, sha256_file


def smooth_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Low-frequency random fields in [0,1] (more image-like than white noise)."""
    coarse = torch.rand(n, 3, 8, 8, generator=generator)
    fine = torch.rand(n, 3, size, size, generator=generator)
    return (
        0.85 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False) + 0.15 * fine
    ).clamp(0, 1)


def fid_inception_random(seed: int = 0) -> torch.nn.Module:
    """pytorch-fid's FID Inception structure (its public building blocks), seeded random, BN-calibrated."""
    from pytorch_fid import inception as fi

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = fi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = fi.FIDInceptionE_1(1280)
        net.Mixed_7c = fi.FIDInceptionE_2(2048)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration pass
            module.reset_running_stats()
    net.train()
    with torch.no_grad():
        net(smooth_images(8, 299, torch.Generator().manual_seed(seed)) * 2 - 1)
    return net.eval()


def write_fid_inception(checkpoints: Path) -> Path:
    path = checkpoints / "pt_inception-2015-12-05-6726825d.pth"
    if not path.exists():
        checkpoints.mkdir(parents=True, exist_ok=True)
        torch.save(fid_inception_random().state_dict(), path)
    return path


def write_alexnet(checkpoints: Path, seed: int = 0) -> Path:
    """A complete random torchvision AlexNet state dict (lpips loads it strictly)."""
    import torchvision

    path = checkpoints / "alexnet-owt-7be5be79.pth"
    if not path.exists():
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def registry_for(files: dict[str, Path]) -> Registry:
    """The default registry with the stand-ins' real digests, so the normal verification code runs."""
    registry = DEFAULT_REGISTRY
    for name, path in files.items():
        registry = registry.with_overrides(
            name, sha256=sha256_file(path), sha256_prefix=None, size=path.stat().st_size
        )
    return registry


def write_cleanfid_standin(folder: Path, seed: int = 0) -> Path:
    """A small TorchScript file with the interface of clean-fid's `inception-2015-12-05.pt`: `.layers` maps
    a normalised 299 px batch to 2048 features, `forward(x, return_features)` resizes inside. clean-fid's
    own code and ours then run the same network, so their FIDs must agree."""

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = torch.nn.AdaptiveAvgPool2d(8)
            self.proj = torch.nn.Linear(3 * 8 * 8, 2048)

        def forward(self, x):
            return torch.tanh(self.proj(self.pool(x).flatten(1)))[:, :, None, None]

    class Standin(torch.nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = layers

        def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            return self.layers((x - 128) / 128).view(-1, 2048)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers = Layers().eval()
    path = folder / "inception-2015-12-05.pt"
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.script(Standin(torch.jit.script(layers))).save(str(path))
    return path
