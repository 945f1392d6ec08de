"""`bench evaluate --device cuda` equals the CPU results within each metric's tolerance (needs CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metric_weights import smooth_images
from PIL import Image

from bench.metrics.evaluate import evaluate_folders

TOLERANCE = {"psnr": 1e-9, "ssim": 1e-6, "lpips": 1e-4, "fid": 1e-3, "kid": 1e-3}  # abs; fid/kid relative


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_results_equal_cpu_results(metric_env, tmp_path):
    generator = torch.Generator().manual_seed(3)
    gt = smooth_images(6, 96, generator)
    pred = (0.8 * gt + 0.2 * smooth_images(6, 96, generator)).clamp(0, 1)
    for name, images in (("gt", gt), ("pred", pred)):
        (tmp_path / name).mkdir()
        for k, image in enumerate(images):
            array = (image.permute(1, 2, 0) * 255).round().byte().numpy()
            Image.fromarray(np.ascontiguousarray(array)).save(tmp_path / name / f"{k}.png")
    results = {}
    for device in ("cpu", "cuda"):
        rows, _ = evaluate_folders(tmp_path / "gt", tmp_path / "pred", metrics=list(TOLERANCE), device=device,
                                   registry=metric_env["registry"], use_cache=False, batch_size=4)
        results[device] = {row["metric"]: row for row in rows}
    for metric, tolerance in TOLERANCE.items():
        cpu, cuda = results["cpu"][metric], results["cuda"][metric]
        scale = abs(cpu["value"]) if metric in ("fid", "kid") else 1.0
        assert abs(cpu["value"] - cuda["value"]) <= tolerance * scale, (metric, cpu["value"], cuda["value"])
        assert cpu["protocol_id"] == cuda["protocol_id"], metric  # the device is recorded, not hashed
        assert cuda["protocol"]["execution"] == {"device": "cuda"}
