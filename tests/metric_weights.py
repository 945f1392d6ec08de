"""The seeded metric-network stand-ins live in the package (benchmarks use them too); tests import them here."""

from bench.metrics.standins import (  # noqa: F401
    registry_for,
    smooth_images,
    write_alexnet,
    write_cleanfid_standin,
    write_fid_inception,
)


class StandInFeatures:
    """FID/KID feature extractor stand-in (the state and merging logic under test does not depend on the network):
    a fixed random projection of 4x4-pooled images, or, with project=False, none at all for tests that add
    features themselves."""

    weights_sha256 = "test"

    def __init__(self, project: bool = True):
        self.project = project
        self.conventions = {"backend": "test projection" if project else "features given by the test"}

    def __call__(self, images):
        import torch

        if not self.project:
            raise AssertionError("the test passes features directly")
        weights = torch.randn(3 * 4 * 4, 2048, generator=torch.Generator().manual_seed(0))
        return torch.tanh(torch.nn.functional.adaptive_avg_pool2d(images.cpu(), 4).flatten(1) @ weights).numpy()
