"""The seeded metric-network stand-ins live in the package (benchmarks use them too); tests import them here."""

from bench.metrics.standins import (  # noqa: F401
    registry_for,
    smooth_images,
    write_alexnet,
    write_cleanfid_standin,
    write_fid_inception,
)
