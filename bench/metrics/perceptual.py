"""LPIPS through the `lpips` package (v0.1 heads; AlexNet by default, VGG as an option).

The backbone comes from the weights registry (`lpips-alex` / `lpips-vgg`, torchvision files), is
verified first and is then loaded by lpips' own code through torch.hub pointed at the verified file.
The linear heads ship inside the lpips wheel; their SHA-256 is checked so package drift is caught.
Inputs: RGB in [0,1] mapped to [-1,1] (the package's `normalize=True`), full resolution, eval mode.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from bench.errors import BenchError
from bench.metrics.base import PerImageMetric, to_float_nchw
from bench.weights import hub_scope, resolve, verify_file

# SHA-256 of the linear heads shipped in lpips 0.1.4 (measured on the installed wheel).
LINEAR_HEADS_SHA256 = {
    ("0.1", "alex"): "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    ("0.1", "vgg"): "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}
MIN_SIZE = {"alex": 32, "vgg": 16}


def _linear_heads(net: str, version: str) -> tuple[Path, str]:
    import lpips

    path = Path(lpips.__file__).parent / "weights" / f"v{version}" / f"{net}.pth"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = LINEAR_HEADS_SHA256.get((version, net))
    if expected is None:
        raise BenchError(
            f"lpips: net={net!r} version={version!r} is not supported; use net 'alex' or 'vgg', version '0.1'"
        )
    if digest != expected:
        raise BenchError(
            f"lpips: the linear heads {path} have sha256 {digest}, expected {expected}; install lpips==0.1.4"
        )
    return path, digest


class LPIPS(PerImageMetric):
    """Per-image LPIPS distance (lower is better).

    random_backbone=True uses lpips' own `pnet_rand=True` (real heads, random trunk): for offline tests only,
    recorded in the protocol so such numbers never pass for real ones.
    """

    name = "lpips"

    def __init__(
        self,
        net: str = "alex",
        version: str = "0.1",
        random_backbone: bool = False,
        **common,
    ):
        import lpips

        if net not in MIN_SIZE:
            raise BenchError(f"lpips: net must be 'alex' or 'vgg', got {net!r}")
        super().__init__(**common)
        self.net, self.version = net, version
        _, heads_sha = _linear_heads(net, version)
        weights = {"linear_heads": heads_sha}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            if random_backbone:
                model = lpips.LPIPS(net=net, version=version, pnet_rand=True, verbose=False)
                weights["backbone"] = "random (pnet_rand=True)"
            else:
                name = f"lpips-{net}"
                path = resolve(name, self.registry)
                weights["backbone"] = verify_file(self.registry.get(name), path)
                with hub_scope(path):
                    model = lpips.LPIPS(net=net, version=version, verbose=False)
        self.model = model.eval().to(self.device)
        self.weights = weights

    @property
    def conventions(self) -> dict:
        return {
            "backend": "lpips 0.1.4",
            "net": self.net,
            "lpips_version": self.version,
            "input": "RGB [0,1] -> [-1,1], full resolution, no resize",
            "weights": self.weights,
        }

    @torch.no_grad()
    def values(self, pred, gt) -> list[float]:
        p, g = self.checked_pair(pred, gt, to_float_nchw)
        if min(p.shape[-2:]) < MIN_SIZE[self.net]:
            raise BenchError(
                f"lpips ({self.net}) needs images of at least {MIN_SIZE[self.net]} px, got {tuple(p.shape[-2:])}"
            )
        return self.model(p * 2 - 1, g * 2 - 1).flatten().double().cpu().tolist()
