"""PSNR and SSIM with the official Panini conventions (uint8-rounded RGB, all channels, no crop), in torch.

PSNR: the official code (`mmedit` `psnr`) rounds outputs to uint8, takes the MSE over H x W x C and
returns 20 log10(255 / sqrt(MSE)); the set value is the mean of per-image values. MSE here is float64.
SSIM: the Wang et al. / MATLAB variant = skimage `structural_similarity(channel_axis=-1, data_range=255,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`: the same 11-tap Gaussian, the 5-pixel
border that touches padding dropped (so no padding is computed at all), mean over positions, then channels.
Options: `channel="y"` (BT.601 "MATLAB" luma in [16, 235], as BasicSR/mmcv) and `crop_border`.
Both run on the metric's device, a whole batch and all channels at once.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from bench.errors import BenchError
from bench.metrics.base import PerImageMetric, to_uint8_nchw

_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
TAPS, SIGMA, RADIUS = 11, 1.5, 5  # skimage: truncate 3.5 -> radius int(3.5 * 1.5 + 0.5) = 5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
STRIP_ROWS = 64  # PSNR rows per step: small buffers
TILE_ROWS, TILE_COLS = 16, 32  # SSIM outputs per tile: small tiles keep centred values near their local mean


def prepare(images: torch.Tensor, channel: str, crop_border: int, dtype=torch.float64) -> torch.Tensor:
    """uint8 NCHW -> NCHW of DTYPE (RGB, or 1-channel Y computed in float64), border cropped."""
    if crop_border:
        images = images[..., crop_border:-crop_border, crop_border:-crop_border]
    if channel == "rgb":
        return images.to(dtype)
    weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=images.device)
    return (torch.einsum("nchw,c->nhw", images.double(), weights) + 16.0)[:, None].to(dtype)


def psnr_values(pred_u8: torch.Tensor, gt_u8: torch.Tensor, channel: str = "rgb", crop_border: int = 0) -> list[float]:
    """Per-image PSNR in dB of uint8 NCHW batches (inf where the images are identical).

    RGB squared errors are summed exactly in int64, STRIP_ROWS rows at a time: no whole-image int32 or
    float64 copies (12-25 MiB each at 1024 px), whose churn in the decoder threads fragments the heap."""
    dtype = torch.int32 if channel == "rgb" else torch.float64
    pred_u8, gt_u8 = (prepare(t, "rgb", crop_border, torch.uint8) for t in (pred_u8, gt_u8))
    squares, count = 0, 0
    for top in range(0, pred_u8.shape[-2], STRIP_ROWS):
        p, g = (prepare(t[..., top : top + STRIP_ROWS, :], channel, 0, dtype) for t in (pred_u8, gt_u8))
        squares, count = squares + ((p - g) ** 2).flatten(1).sum(1), count + p[0].numel()
    mse = (squares.double() / count).cpu().tolist()
    return [10.0 * math.log10(255.0**2 / m) if m > 0 else math.inf for m in mse]


@lru_cache(maxsize=16)
def _band_filter(rows: int, device: torch.device) -> torch.Tensor:
    """(rows, rows + 10) matrix whose product with rows + 10 input lines is the valid 11-tap Gaussian filter."""
    x = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / SIGMA) ** 2)
    taps = taps / taps.sum()
    matrix = torch.zeros(rows, rows + TAPS - 1, dtype=torch.float64)
    for r in range(rows):
        matrix[r, r : r + TAPS] = taps
    return matrix.float().to(device)


def ssim_values(pred_u8: torch.Tensor, gt_u8: torch.Tensor, channel: str = "rgb", crop_border: int = 0) -> list[float]:
    """Per-image SSIM (mean over the valid window positions, then over channels).

    The outputs are cut into tiles of TILE_ROWS x TILE_COLS, each read with its 10-pixel halo, a strip of
    rows at a time: the work stays in the CPU cache, and no buffer is image-sized. In each tile x and y
    are centred at their rounded tile mean, so float32 squares of 8-bit values are exact and flat regions
    lose nothing to cancellation (per-image values differ from skimage's float64 by ~1e-7). The four
    filtered maps (x, y, x^2 + y^2, xy: SSIM needs only the sum of the variances) go through the separable
    Gaussian as two banded matrix products: vertical over the strip, then horizontal within each tile.
    """
    x, y = (prepare(t, "rgb", crop_border, torch.uint8) for t in (pred_u8, gt_u8))  # cropped views
    n, _, h, w = x.shape
    c = 3 if channel == "rgb" else 1
    if min(h, w) < TAPS:
        raise BenchError(f"SSIM needs images of at least {TAPS}x{TAPS} px after cropping, got {h}x{w}")
    halo = TAPS - 1
    out_h, out_w = h - halo, w - halo
    tile_rows, tile_cols = min(TILE_ROWS, out_h), min(TILE_COLS, out_w)
    blocks = -(-out_w // tile_cols)
    widen = blocks * tile_cols + halo - w  # to whole tiles, with edge copies (keeps the centre near)
    horizontal = _band_filter(tile_cols, x.device).T.contiguous()
    sums = []
    for top in range(0, out_h, tile_rows):
        rows = min(tile_rows, out_h - top)
        strip = torch.cat([x[..., top : top + rows + halo, :], y[..., top : top + rows + halo, :]])  # uint8
        if widen:
            strip = torch.cat([strip, strip[..., -1:].expand(-1, -1, -1, widen)], -1)
        strip = prepare(strip, channel, 0, torch.float32).view(2, n * c, rows + halo, -1)  # one conversion
        tiles = strip.unfold(-1, tile_cols + halo, tile_cols)  # (2, NC, R+10, B, T+10), overlapping views
        centres = tiles.mean((2, 4), keepdim=True).round_()
        maps = torch.empty((4, *tiles.shape[1:]), device=x.device)
        tx, ty = torch.sub(tiles, centres, out=maps[:2])
        torch.mul(tx, tx, out=maps[2]).addcmul_(ty, ty)
        torch.mul(tx, ty, out=maps[3])
        maps = _band_filter(rows, x.device) @ maps.view(4 * n * c, rows + halo, -1)
        ux, uy, squares, products = (maps.view(-1, tile_cols + halo) @ horizontal).view(4, n * c, rows, blocks, -1)
        covariance = products.addcmul_(ux, uy, value=-1).mul_(2).add_(C2)
        variances = squares.addcmul_(ux, ux, value=-1).addcmul_(uy, uy, value=-1).add_(C2)
        ux, uy = ux.add_(centres[0]), uy.add_(centres[1])
        numerator = (ux * uy).mul_(2).add_(C1).mul_(covariance)
        denominator = ux.square_().addcmul_(uy, uy).add_(C1).mul_(variances)
        sums.append(numerator.div_(denominator).view(n * c, rows, -1)[..., :out_w].sum((1, 2)))
    total = torch.stack(sums).sum(0, dtype=torch.float64)
    return (total / (out_h * out_w)).view(n, c).mean(1).cpu().tolist()


class _PixelMetric(PerImageMetric):
    thread_safe = True  # pure and cheap per pair: `bench evaluate` runs it in its decoder threads on a CPU

    def __init__(self, channel: str = "rgb", crop_border: int = 0, **common):
        if channel not in ("rgb", "y"):
            raise BenchError(f"{self.name}: channel must be 'rgb' or 'y', got {channel!r}")
        if crop_border < 0:
            raise BenchError(f"{self.name}: crop_border must be >= 0, got {crop_border}")
        self.channel, self.crop_border = channel, int(crop_border)
        super().__init__(**common)

    @property
    def conventions(self) -> dict:
        return {
            "input": "uint8-rounded (float in [0,1] * 255, round)",
            "channel": self.channel,
            "crop_border": self.crop_border,
            "definition": DEFINITIONS[self.name][1],
        }

    @torch.no_grad()
    def values(self, pred, gt) -> list[float]:
        function, _ = DEFINITIONS[self.name]
        return function(*self.checked_pair(pred, gt, to_uint8_nchw), self.channel, self.crop_border)


# name -> (per-image function, the definition recorded in the protocol)
DEFINITIONS = {
    "psnr": (psnr_values, "10*log10(255^2/MSE), MSE float64 over HxWxC"),
    "ssim": (ssim_values, "gaussian sigma=1.5 11x11, K1=0.01, K2=0.03, L=255, population covariance, valid window"),
}


class PSNR(_PixelMetric):
    """PSNR in dB, Panini convention by default. inf (identical images) is kept, counted in `n_infinite`."""

    name = "psnr"


class SSIM(_PixelMetric):
    """SSIM, Wang et al. Gaussian-window variant (= skimage with gaussian_weights=True, sigma 1.5)."""

    name = "ssim"
