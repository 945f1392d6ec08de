"""PSNR and SSIM with the official Panini conventions (uint8-rounded RGB, all channels, no crop).

PSNR: the official code (`mmedit` `psnr`) rounds outputs to uint8, takes the MSE over H x W x C and
returns 20 log10(255 / sqrt(MSE)); the set value is the mean of per-image values. MSE here is float64.
SSIM: the Wang et al. / MATLAB variant = skimage `structural_similarity(channel_axis=-1, data_range=255,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`, computed with one separable
Gaussian pass over all five moment maps (same 11-tap kernel, 5-pixel border discard, channel mean).
Options: `channel="y"` (BT.601 "MATLAB" luma in [16, 235], as BasicSR/mmcv) and `crop_border`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from bench.errors import BenchError
from bench.metrics.base import PROTOCOL_VERSION, PerImageMetric, check_pair, to_uint8_nhwc

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def prepare(images: np.ndarray, channel: str, crop_border: int) -> np.ndarray:
    """uint8 NHWC -> float64 NHWC (RGB, or 1-channel Y), border cropped."""
    x = images.astype(np.float64)
    if channel == "y":
        x = (x @ _Y_WEIGHTS + 16.0)[..., None]
    if crop_border:
        x = x[:, crop_border:-crop_border, crop_border:-crop_border]
    return x


def psnr_values(pred_u8: np.ndarray, gt_u8: np.ndarray, channel: str = "rgb", crop_border: int = 0) -> list[float]:
    """Per-image PSNR in dB of uint8 NHWC batches (inf where the images are identical)."""
    p, g = prepare(pred_u8, channel, crop_border), prepare(gt_u8, channel, crop_border)
    mse = ((p - g) ** 2).reshape(len(p), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return [float(10.0 * np.log10(255.0**2 / m)) if m > 0 else math.inf for m in mse]


def _gaussian_taps(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def ssim_values(pred_u8: np.ndarray, gt_u8: np.ndarray, channel: str = "rgb", crop_border: int = 0) -> list[float]:
    """Per-image SSIM (mean over the valid window positions, then over channels)."""
    return [_ssim_one(p, g, channel, crop_border) for p, g in zip(pred_u8, gt_u8, strict=True)]


def _ssim_one(pred_u8: np.ndarray, gt_u8: np.ndarray, channel: str, crop_border: int) -> float:
    p, g = prepare(pred_u8[None], channel, crop_border)[0], prepare(gt_u8[None], channel, crop_border)[0]
    taps = _gaussian_taps()
    pad = len(taps) // 2
    if min(p.shape[:2]) < len(taps):
        raise BenchError(
            f"SSIM needs images of at least {len(taps)}x{len(taps)} px after cropping, got {p.shape[0]}x{p.shape[1]}"
        )
    # Five moment maps per channel, one separable filter pass (scipy releases the GIL, so decoder threads
    # can run this next to the network); the border touching the padding is dropped, as skimage does.
    p, g = np.ascontiguousarray(p.transpose(2, 0, 1)), np.ascontiguousarray(g.transpose(2, 0, 1))
    maps = np.stack([p, g, p * p, g * g, p * g])  # (5, C, H, W)
    for axis in (2, 3):
        maps = ndimage.correlate1d(maps, taps, axis=axis, mode="reflect")
    ux, uy, uxx, uyy, uxy = maps[..., pad:-pad, pad:-pad]
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean(axis=(1, 2)).mean())


class _PixelMetric(PerImageMetric):
    function = None
    convention = ""

    def __init__(self, channel: str = "rgb", crop_border: int = 0, **bootstrap):
        if channel not in ("rgb", "y"):
            raise BenchError(f"{self.name}: channel must be 'rgb' or 'y', got {channel!r}")
        if crop_border < 0:
            raise BenchError(f"{self.name}: crop_border must be >= 0, got {crop_border}")
        self.channel, self.crop_border = channel, int(crop_border)
        super().__init__(**bootstrap)

    @property
    def protocol(self) -> dict:
        return {
            "metric": self.name,
            "version": PROTOCOL_VERSION,
            "input": "uint8-rounded (float in [0,1] * 255, round)",
            "channel": self.channel,
            "crop_border": self.crop_border,
            "aggregate": "mean of per-image values",
            "definition": self.convention,
            "bootstrap": self.bootstrap,
        }

    def values(self, pred, gt) -> list[float]:
        check_pair(pred, gt)
        p, g = to_uint8_nhwc(pred, f"{self.name} prediction"), to_uint8_nhwc(gt, f"{self.name} ground truth")
        return type(self).function(p, g, self.channel, self.crop_border)


class PSNR(_PixelMetric):
    """PSNR in dB, Panini convention by default. inf (identical images) is kept, counted in `n_infinite`."""

    name = "psnr"
    function = staticmethod(psnr_values)
    convention = "10*log10(255^2/MSE), MSE float64 over HxWxC"


class SSIM(_PixelMetric):
    """SSIM, Wang et al. Gaussian-window variant (= skimage with gaussian_weights=True, sigma 1.5)."""

    name = "ssim"
    function = staticmethod(ssim_values)
    convention = "gaussian sigma=1.5 11x11, K1=0.01, K2=0.03, L=255, population covariance, valid window"
