"""PSNR/SSIM against numpy and scikit-image; input conventions; mergeable state; bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.errors import BenchError
from bench.metrics import create_metric
from bench.metrics.bootstrap import bootstrap_mean_ci


def _pairs(n=3, h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8)
    return pred, gt


def _nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def _sk_ssim(a, b, channel_axis=-1):
    return structural_similarity(
        a,
        b,
        channel_axis=channel_axis,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )


def test_psnr_equals_numpy_and_skimage():
    pred, gt = _pairs()
    values = create_metric("psnr").update(_nchw(pred), _nchw(gt))
    for v, p, g in zip(values, pred, gt, strict=True):
        mse = np.mean((p.astype(np.float64) - g.astype(np.float64)) ** 2)
        assert v == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-10)
        assert v == pytest.approx(peak_signal_noise_ratio(g, p, data_range=255), abs=1e-10)


def test_psnr_y_channel_and_crop_border():
    pred, gt = _pairs()
    y = create_metric("psnr", channel="y").update(_nchw(pred), _nchw(gt))
    for v, p, g in zip(y, pred, gt, strict=True):
        yp, yg = rgb2ycbcr(p)[..., 0], rgb2ycbcr(g)[..., 0]
        assert v == pytest.approx(10 * np.log10(255**2 / np.mean((yp - yg) ** 2)), abs=1e-9)
    cropped = create_metric("psnr", crop_border=4).update(_nchw(pred), _nchw(gt))
    for v, p, g in zip(cropped, pred, gt, strict=True):
        assert v == pytest.approx(
            peak_signal_noise_ratio(g[4:-4, 4:-4], p[4:-4, 4:-4], data_range=255), abs=1e-10
        )


def test_psnr_known_mse_and_identical_images():
    gt = np.full((1, 16, 16, 3), 100, np.uint8)
    metric = create_metric("psnr")
    assert metric.update(_nchw(gt + 10), _nchw(gt))[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert metric.update(_nchw(gt), _nchw(gt))[0] == math.inf
    assert metric.compute()[0]["n_infinite"] == 1


def test_float_input_is_rounded_like_the_official_tensor2img():
    pred, gt = _pairs(n=2)
    as_float = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 255 + 0.4 / 255  # rounds back
    metric = create_metric("psnr")
    assert metric.update(as_float, _nchw(gt).float() / 255) == metric.update(_nchw(pred), _nchw(gt))


def test_ssim_equals_skimage_rgb_y_and_crop():
    pred, gt = _pairs(h=37, w=52)
    for v, p, g in zip(create_metric("ssim").update(_nchw(pred), _nchw(gt)), pred, gt, strict=True):
        assert abs(v - _sk_ssim(p, g)) < 1e-6
    for v, p, g in zip(
        create_metric("ssim", channel="y").update(_nchw(pred), _nchw(gt)), pred, gt, strict=True
    ):
        assert abs(v - _sk_ssim(rgb2ycbcr(p)[..., 0], rgb2ycbcr(g)[..., 0], channel_axis=None)) < 1e-6
    for v, p, g in zip(
        create_metric("ssim", crop_border=3).update(_nchw(pred), _nchw(gt)), pred, gt, strict=True
    ):
        assert abs(v - _sk_ssim(p[3:-3, 3:-3], g[3:-3, 3:-3])) < 1e-6


def test_bad_inputs_are_clear_errors():
    pred, gt = _pairs(n=2)
    nan = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 255
    nan[1, 0, 0, 0] = float("nan")
    with pytest.raises(BenchError, match=r"NaN .* \[1\]"):
        create_metric("psnr").update(nan, _nchw(gt))
    with pytest.raises(BenchError, match="differs from ground truth"):
        create_metric("ssim").update(_nchw(pred)[:, :, :20], _nchw(gt))
    with pytest.raises(BenchError, match="at least 11x11"):
        create_metric("ssim").update(_nchw(pred)[:, :, :8, :8], _nchw(gt)[:, :, :8, :8])
    for name, options, match in [("psnr", {"channel": "lab"}, "channel must be"), ("niqe", {}, "unknown metric")]:
        with pytest.raises(BenchError, match=match):
            create_metric(name, **options)


def test_sharded_states_merge_to_the_unsharded_result():
    pred, gt = _pairs(n=6)
    whole = create_metric("ssim")
    whole.update(_nchw(pred), _nchw(gt), ids=[f"{i}" for i in range(6)])
    shards = [create_metric("ssim") for _ in range(2)]
    for k, shard in enumerate(shards):
        shard.update(_nchw(pred[k::2]), _nchw(gt[k::2]), ids=[f"{i}" for i in range(k, 6, 2)])
    shards[0].merge(shards[1].state_dict())
    merged, expected = shards[0].compute()[0], whole.compute()[0]
    assert merged["value"] == pytest.approx(expected["value"], abs=1e-15)
    assert merged["protocol_id"] == expected["protocol_id"] and merged["n"] == 6
    with pytest.raises(BenchError, match="different protocols"):
        shards[0].merge(create_metric("ssim", channel="y"))


def test_protocol_id_changes_with_every_convention():
    ids = {
        create_metric("psnr", **kw).compute.__self__.state_dict()["protocol_id"]
        for kw in ({}, {"channel": "y"}, {"crop_border": 2}, {"ci_seed": 1})
    }
    assert len(ids) == 4


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(3).normal(10, 2, size=200)
    low, high, level = bootstrap_mean_ci(values, resamples=500, seed=7)
    assert (low, high) == bootstrap_mean_ci(values, resamples=500, seed=7)[:2]
    assert low < values.mean() < high and level == 0.95
    assert 0.1 < high - low < 1.0  # about 2 * 1.96 * 2 / sqrt(200) = 0.55


@pytest.mark.parametrize("size", [11, 16, 20])
def test_ssim_of_small_channels_last_views_equals_skimage(size):
    """NHWC arrays seen as NCHW (what the decoders hand over) at sizes where one tile covers the image."""
    pred, gt = _pairs(n=1, h=size, w=size, seed=1)  # one pair: what the decoder threads score
    as_view = [torch.from_numpy(x).permute(0, 3, 1, 2) for x in (pred, gt)]  # strides of NHWC, not copied
    for v, p, g in zip(create_metric("ssim").update(*as_view), pred, gt, strict=True):
        assert abs(v - _sk_ssim(p, g)) < 1e-6


def _hard_pair(h, w, seed):
    """Smooth shading, a 0/254 step edge with 1-level noise (float32 cancellation's worst case), texture."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:h, 0:w]
    gt = 120 + 100 * np.sin(rows / 37.0) * np.cos(cols / 53.0)
    gt[:, w // 3 : w // 2] = 254
    gt[:, w // 2 : 2 * w // 3] = 0
    gt = np.repeat(gt[..., None], 3, axis=2) + rng.integers(0, 2, (h, w, 3))
    pred = gt + rng.integers(-12, 13, gt.shape) * (cols[..., None] > 2 * w // 3) + rng.integers(0, 2, gt.shape)
    return [np.clip(x, 0, 255).astype(np.uint8)[None] for x in (pred, gt)]


@pytest.mark.parametrize(("h", "w", "crop"), [(17, 23, 0), (23, 17, 3), (1024, 1024, 0), (331, 517, 4)])
def test_ssim_equals_skimage_on_odd_sizes_edges_and_flat_regions(h, w, crop):
    """The tiled float32 SSIM stays within 1e-6 of skimage's float64 on RGB and Y, with and without a crop."""
    pred, gt = _hard_pair(h, w, seed=h + w)
    p, g = (x[0, crop : h - crop, crop : w - crop] for x in (pred, gt))
    rgb = create_metric("ssim", crop_border=crop).update(_nchw(pred), _nchw(gt))[0]
    assert abs(rgb - _sk_ssim(p, g)) < 1e-6
    y = create_metric("ssim", channel="y", crop_border=crop).update(_nchw(pred), _nchw(gt))[0]
    assert abs(y - _sk_ssim(rgb2ycbcr(p)[..., 0], rgb2ycbcr(g)[..., 0], channel_axis=None)) < 1e-6
