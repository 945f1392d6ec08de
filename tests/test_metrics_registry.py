"""The metric registry: knowledge on the metric, one factory, adding a metric, SSIM accuracy on flat images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from metric_weights import smooth_images
from PIL import Image
from skimage.metrics import structural_similarity

from bench.metrics import METRICS, MetricEntry, build_metrics
from bench.metrics.evaluate import evaluate_folders
from bench.metrics.fid import InceptionDistances
from bench.reports import tables


@pytest.fixture
def mae_registered(monkeypatch):
    """Register the README's example metric for one test; monkeypatch restores the registry afterwards."""
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    monkeypatch.setitem(METRICS, "mae", MetricEntry("example_metric:MAE", "MAE", 3, False))


def _save(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{k:02d}.png")
    return folder


def _pairs(n=4, size=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    gt = (smooth_images(n, size, generator) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    noise = np.random.default_rng(seed).integers(-9, 10, gt.shape)
    return np.clip(gt.astype(int) + noise, 0, 255).astype(np.uint8), gt


def test_a_new_metric_is_one_module_plus_one_entry(mae_registered, tmp_path):
    pred, gt = _pairs()
    rows, per_image = evaluate_folders(_save(tmp_path / "gt", gt), _save(tmp_path / "pred", pred),
                                       metrics=["psnr", "mae"])
    mae = {row["metric"]: row for row in rows}["mae"]
    expected = np.abs(pred.astype(float) - gt.astype(float)).reshape(len(gt), -1).mean(1)
    assert mae["value"] == pytest.approx(expected.mean(), abs=1e-6) and mae["n"] == len(gt)
    assert mae["higher_is_better"] is False and mae["ci_low"] <= mae["value"] <= mae["ci_high"]
    assert sorted(r["value"] for r in per_image if r["metric"] == "mae") == pytest.approx(sorted(expected))
    assert tables.metric_label("mae") == "MAE ↓" and tables.fmt(1.23456, "mae") == "1.235"
    assert build_metrics(["mae"])["mae"].higher_is_better is False


def test_registry_knowledge_is_on_the_metric_and_reports_read_it():
    metrics = build_metrics(["psnr", "ssim"], ci_resamples=7, ci_seed=3)
    assert metrics["psnr"].higher_is_better is True and metrics["ssim"].decimals == 4
    assert metrics["ssim"].bootstrap == {"resamples": 7, "level": 0.95, "seed": 3}
    assert tables.metric_label("fid") == "FID ↓" and tables.fmt(12.3456, "fid") == "12.35"
    assert tables.metric_label("theta") == "θ (DAFI_5)"
    # the registry and the report tables import without torch (data only)
    code = "import sys, bench.metrics, bench.reports.tables; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


class _Projection:
    conventions = {"backend": "test projection"}
    weights_sha256 = "test"

    def __call__(self, images):
        weights = torch.randn(3 * 4 * 4, 2048, generator=torch.Generator().manual_seed(0))
        return torch.tanh(torch.nn.functional.adaptive_avg_pool2d(images.cpu(), 4).flatten(1) @ weights).numpy()


def test_fid_and_kid_share_one_object_with_both_outputs():
    metrics = build_metrics(["kid", "psnr", "fid"], options={"fid": {"extractor": _Projection()}}, ci_resamples=0)
    assert metrics["fid"] is metrics["kid"] and isinstance(metrics["fid"], InceptionDistances)
    assert metrics["fid"].outputs == ("kid", "fid") and metrics["fid"].bootstrap["resamples"] == 0
    generator = torch.Generator().manual_seed(1)
    metrics["fid"].update(smooth_images(3, 32, generator), smooth_images(3, 32, generator))
    rows = metrics["fid"].compute()
    assert [r["metric"] for r in rows] == ["fid", "kid"] and all(r["higher_is_better"] is False for r in rows)


def test_ssim_matches_skimage_on_flat_and_smooth_images():
    """Flat regions are where float32 moments could drift; the mean must stay within 1e-5 of skimage."""
    pred, gt = _pairs(n=2, size=160, seed=5)
    gt[:, :80] = 200  # a flat band, prediction slightly off it
    pred[:, :80] = 201
    values = build_metrics(["ssim"])["ssim"].update(torch.from_numpy(pred).permute(0, 3, 1, 2),
                                                    torch.from_numpy(gt).permute(0, 3, 1, 2))
    for value, p, g in zip(values, pred, gt, strict=True):
        reference = structural_similarity(p, g, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False)
        assert abs(value - reference) < 1e-6
