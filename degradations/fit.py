"""Degradation forensics: estimate how an LQ image was made from its GT (paper Eq. (10) and its readings).

Every estimate is found by analysis by synthesis with this project's own operations, so the estimators
can be (and are, in tests/test_fit.py) checked by recovering known parameters from sets built here:
- low-res size s (hence r = GT size / s) and the upsampling kernel: least-squares projection of the LQ
  onto the images that kernel can produce from an s x s image; the smallest s that explains the LQ up
  to a noise floor wins (BIC);
- downsampling kernel and blur sigma: the GT blurred and downsampled by each candidate is compared with
  that best low-res image;
- JPEG: the 8x8 block DCT coefficients of a decoded JPEG sit on multiples of the IJG quantisation table;
  the quality whose table explains most non-zero coefficients (beyond chance), at each grid offset, wins;
  the same test on the low-res image says whether JPEG came before the upsampling; chroma subsampling by
  re-compression (a decoded JPEG changes least when re-encoded with its own settings);
- noise std and colour vs grey: the residual that the low-res image cannot explain is matched against
  simulations of both hypotheses (same JPEG), luma for the std and chroma for the kind.
Each estimate carries a confidence in [0, 1] or is None with a `reason` ("not identifiable").
The JPEG quality is reported as the IJG quality handed to the encoder.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from bench.degradations import ops

# IJG (libjpeg) base tables, JPEG standard Annex K, in row-major (not zigzag) order.
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
IJG_CHROMA = np.array([17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5
                      + [47, 66] + [99] * 38, dtype=np.float64)

# Resampling kernels the fit can tell apart: library-kernel -> resize function on float32 HW arrays.
KERNELS = ("cv2-nearest", "cv2-linear", "cv2-cubic", "cv2-area", "pil-nearest", "pil-linear", "pil-cubic", "pil-box")
_CV2 = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
_PIL = {"nearest": Image.NEAREST, "linear": Image.BILINEAR, "cubic": Image.BICUBIC, "box": Image.BOX}
# The presets' OpenCV interpolation names (degradations.ops) as fit kernels.
PRESET_KERNEL = {"nearest": "cv2-nearest", "bilinear": "cv2-linear", "bicubic": "cv2-cubic", "area": "cv2-area"}

TOLERANCE = 0.6  # |coefficient - nearest multiple of the step| counted as "on the lattice" (DCT units)
NOISE_GRID = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0)
SIGMA_GRID = tuple(round(x, 2) for x in [0.0, *np.arange(0.2, 2.0, 0.1), *np.arange(2.0, 4.0, 0.25),
                                           *np.arange(4.0, 12.01, 0.5)])
# The size scan uses these (the others are near-duplicates when upsampling: PIL linear ~ OpenCV linear,
# OpenCV area ~ linear, PIL box ~ nearest); every kernel is compared at the sizes the scan finds.
SCAN_KERNELS = ("cv2-nearest", "pil-nearest", "cv2-linear", "cv2-cubic", "pil-cubic")
MIN_JPEG_MATCH = 0.3  # below this lattice match no JPEG quantisation is claimed


def resize_float(img: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    """Resize a float32 H x W array to `size` = (width, height) with a named library kernel."""
    lib, name = kernel.split("-", 1)
    if lib == "cv2":
        return cv2.resize(img, size, interpolation=_CV2[name])
    return np.asarray(Image.fromarray(img, mode="F").resize(size, _PIL[name]))


@lru_cache(maxsize=4096)
def _upsampler(small: int, big: int, kernel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, Q, R): the big x small matrix of a 1-D resize and its QR factors (Q: orthonormal basis of
    its columns); resizes are separable, so A says everything about the kernel."""
    basis = np.eye(small, dtype=np.float32)
    # Resizing the identity along one axis only gives that axis' interpolation matrix.
    a = resize_float(basis, (small, big), kernel).astype(np.float64)
    q, r = np.linalg.qr(a)
    return a, q, r


def ycbcr(img: np.ndarray) -> np.ndarray:
    """JFIF full-range YCbCr of an RGB array, float64 (what a JPEG encoder quantises)."""
    x = img.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    return np.stack([y, cb, cr], axis=-1)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The IJG quantisation table for `quality` (1-100), as libjpeg scales it (baseline, clamped to 1-255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return d


_DCT = _dct_matrix()


def block_dct(channel: np.ndarray, offset: tuple[int, int], valid: np.ndarray | None = None) -> np.ndarray:
    """8x8 block DCT (JPEG scaling, level shift 128) of the blocks starting at `offset`: (blocks, 64).

    `valid` (same shape as channel, bool) drops blocks with any invalid pixel (clipped at 0/255, whose
    coefficients left the lattice).
    """
    dy, dx = offset
    h, w = (channel.shape[0] - dy) // 8 * 8, (channel.shape[1] - dx) // 8 * 8
    if h <= 0 or w <= 0:
        return np.zeros((0, 64))
    blocks = channel[dy:dy + h, dx:dx + w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    coefs = (_DCT @ (blocks - 128.0) @ _DCT.T).reshape(-1, 64)
    if valid is not None:
        ok = valid[dy:dy + h, dx:dx + w].reshape(h // 8, 8, w // 8, 8).all(axis=(1, 3)).reshape(-1)
        coefs = coefs[ok]
    return coefs


def lattice_scores(coefs: np.ndarray, base: np.ndarray = IJG_LUMA,
                   qualities=range(1, 101)) -> tuple[np.ndarray, np.ndarray]:
    """Per IJG quality 0..100 (index 0 unused; only `qualities` are scored, the rest stay 0): (evidence,
    match) that the coefficients were quantised with that quality's table.

    Only non-zero coefficients count (a zero fits every table). evidence = sum over coefficients at
    table steps >= 2 of (on lattice - chance), divided by all non-zero coefficients: it favours the
    coarsest consistent table (a table that divides the true one also fits). match = the same, normalised
    to 1 for a perfect fit and 0 for chance: the confidence that this table was used.
    """
    evidence, match = np.zeros(101), np.zeros(101)
    block, freq = np.nonzero(np.abs(coefs) >= 1.5)
    if len(block) < 20:
        return evidence, match
    values = coefs[block, freq]
    qualities = list(qualities)
    steps = np.stack([ijg_table(base, q) for q in qualities])[:, freq]  # (qualities, non-zero coefficients)
    chance = np.minimum(1.0, 2 * TOLERANCE / steps)
    on = np.abs(values - steps * np.round(values / steps)) <= TOLERANCE
    gain = np.where(steps >= 2, on - chance, 0.0).sum(axis=1)
    room = (1 - chance).sum(axis=1)
    evidence[qualities] = gain / len(values)
    match[qualities] = np.divide(gain, room, out=np.zeros_like(gain), where=room > 0)
    return evidence, match


def _blockiness_offset(luma: np.ndarray) -> tuple[int, int]:
    """The 8x8 grid offset where pixel steps across block edges are largest (cheap, q-free)."""
    offset = []
    for axis in (0, 1):
        steps = np.abs(np.diff(luma, axis=axis)).mean(axis=1 - axis)
        per_phase = [steps[k::8].mean() for k in range(8)]
        offset.append((int(np.argmax(per_phase)) + 1) % 8)  # an edge after pixel k starts a block at k+1
    return offset[0], offset[1]


def _valid_pixels(img: np.ndarray) -> np.ndarray:
    return ((img > 0) & (img < 255)).all(axis=-1)


def estimate_jpeg_grid(img: np.ndarray) -> dict:
    """JPEG quality and 8x8 grid offset of a decoded RGB uint8 image, from its luma DCT lattice.

    Candidates: offset (0, 0) and the blockiest offset; the winner's table is then scored at every other
    offset too (`best_other_offset_match`), which says how sharply the grid is located.
    """
    luma = ycbcr(img)[..., 0]
    valid = _valid_pixels(img)
    fits = {}
    for offset in {(0, 0), _blockiness_offset(luma)}:
        evidence, match = lattice_scores(block_dct(luma, offset, valid))
        q = int(np.argmax(evidence))
        fits[offset] = (evidence[q], q, match[q])
    offset = max(fits, key=lambda o: fits[o][0])
    if fits[offset][2] < MIN_JPEG_MATCH:  # weak blocking (high quality): try every offset on a quarter of the blocks
        for dy in range(8):
            for dx in range(8):
                evidence, match = lattice_scores(block_dct(luma, (dy, dx), valid)[::4])
                q = int(np.argmax(evidence))
                fits.setdefault((dy, dx), (evidence[q], q, match[q]))
        offset = max(fits, key=lambda o: fits[o][0])
        evidence, match = lattice_scores(block_dct(luma, offset, valid))
        q = int(np.argmax(evidence))
        fits[offset] = (evidence[q], q, match[q])
    _, quality, best = fits[offset]
    # Only the winning table matters here: scoring one quality instead of 100 makes this 63-offset check cheap.
    other = max(lattice_scores(block_dct(luma, (dy, dx), valid)[::4], qualities=[quality])[1][quality]
                for dy in range(8) for dx in range(8) if (dy, dx) != offset) if quality else 0.0
    result = {"quality": quality, "offset": list(offset), "match": round(float(best), 4),
              "best_other_offset_match": round(float(other), 4)}
    if best < MIN_JPEG_MATCH:
        result.update(quality=None, offset=None, reason=f"no 8x8 quantisation lattice (best match {best:.2f})")
    return result


def jpeg_pil(img: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    """Encode/decode with Pillow's libjpeg at an IJG quality and chroma subsampling ('4:2:0' or '4:4:4')."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality), subsampling={"4:4:4": 0, "4:2:0": 2}[subsampling])
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def estimate_subsampling(img: np.ndarray, quality: int, offset: tuple[int, int]) -> dict:
    """4:2:0 or 4:4:4: which re-encoding (same quality, on the found grid) changes the chroma least."""
    dy, dx = offset
    h, w = img.shape[:2]
    crop = img[dy:dy + (h - dy) // 16 * 16, dx:dx + (w - dx) // 16 * 16]
    chroma = ycbcr(crop)[..., 1:]
    change = {mode: float(np.abs(ycbcr(jpeg_pil(crop, quality, mode))[..., 1:] - chroma).mean())
              for mode in ("4:2:0", "4:4:4")}
    best = min(change, key=change.get)
    worst = max(change.values())
    confidence = 0.0 if worst <= 0 else 1 - change[best] / worst
    return {"value": best, "confidence": round(confidence, 3),
            "recompression_change": {k: round(v, 4) for k, v in change.items()}}


def project(lq: np.ndarray, size: int, kernel: str) -> np.ndarray:
    """The least-squares size x size image (float64, channels last) whose `kernel` upsampling is closest
    to lq."""
    _, q, r = _upsampler(size, lq.shape[0], kernel)
    p = np.linalg.lstsq(r, q.T, rcond=None)[0]  # pinv(A) = R^-1 Q^T
    x = np.moveaxis(lq.astype(np.float64), -1, 0)  # (C, H, W): one matrix product per side
    return np.moveaxis(p @ x @ p.T, 0, -1)


def column_residual(channels: np.ndarray, size: int, kernel: str, stride: int = 4) -> np.ndarray:
    """What the span of a `size` -> H upsampling cannot explain in every `stride`-th column of an
    H x W x C array, as (C, H, W/stride).

    A separable upsampling puts every column of the image in the span of its 1-D matrix, so testing
    columns is exact and much cheaper than projecting the whole image.
    """
    _, q, _ = _upsampler(size, channels.shape[0], kernel)
    x = np.moveaxis(channels[:, ::stride].astype(np.float64), -1, 0)
    return x - q @ (q.T @ x)


def _bic(rss: float, n: int, params: int) -> float:
    return n * math.log(max(rss, 1e-12) / n) + params * math.log(n)


def estimate_lowres(lq: np.ndarray, min_size: int = 4) -> dict:
    """Low-res size and upsampling kernel: the (size, kernel) whose span explains the luma best (BIC).

    Spans of neighbouring sizes are not nested (a 26 px image upsampled is not in the 27 px span), so
    every size from `min_size` to a quarter of the LQ size (r >= 8 for a 1024 GT and a 512 LQ) is scanned,
    with SCAN_KERNELS and every 16th column; the kernels are then compared at the sizes around the best.
    """
    luma = ycbcr(lq)[..., :1]

    def score(size, kernel, stride):
        res = column_residual(luma, size, kernel, stride)
        rss = float((res**2).sum())
        return _bic(rss, res.size, size * res.shape[-1]), rss / res.size

    scan = {s: min(score(s, k, 16)[0] for k in SCAN_KERNELS) for s in range(min_size, lq.shape[0] // 4 + 1)}
    s0 = min(scan, key=scan.get)
    fine = {(s, k): score(s, k, 4) for k in KERNELS for s in range(max(min_size, s0 - 1), s0 + 2)}
    (size, kernel), (bic, mse) = min(fine.items(), key=lambda kv: kv[1][0])
    # Kernels whose fit at this size is practically as good are listed as equivalent.
    at_size = {k: v[1] for (s, k), v in fine.items() if s == size}
    equivalent = sorted(k for k, v in at_size.items() if k != kernel and v <= mse * 1.02 + 1e-3)
    others = [v for k, v in at_size.items() if k != kernel and k not in equivalent]
    kernel_conf = 1 - mse / min(others) if others else 0.0
    ranked = sorted(scan.values())
    size_conf = 1 - math.exp(-(ranked[1] - ranked[0]) / 100) if len(ranked) > 1 else 0.0
    return {"size": size, "size_confidence": round(size_conf, 3), "kernel": kernel, "kernel_equivalent": equivalent,
            "kernel_confidence": round(max(0.0, kernel_conf), 3), "residual_mse": round(mse, 4)}


def estimate_down(gt: np.ndarray, low: np.ndarray) -> dict:
    """Downsampling kernel and blur sigma: which GT blur + downsample reproduces the low-res image best.

    Compared on luma (blur and resize are linear, so they commute with the colour transform).
    """
    size = low.shape[0]
    gt_luma = ycbcr(gt)[..., 0].astype(np.float32)
    target = ycbcr(np.clip(low, 0, 255))[..., 0]
    errors = {}
    for sigma in SIGMA_GRID:
        blurred = gt_luma
        if sigma > 0:
            k = ops.blur_kernel_size(sigma)
            blurred = cv2.GaussianBlur(gt_luma, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        for kernel in KERNELS:
            errors[(kernel, sigma)] = float(((resize_float(blurred, (size, size), kernel) - target) ** 2).mean())
    (kernel, sigma), mse = min(errors.items(), key=lambda kv: kv[1])
    per_kernel = {k: min(v for (kk, _), v in errors.items() if kk == k) for k in KERNELS}
    equivalent = sorted(k for k, v in per_kernel.items() if k != kernel and v <= mse * 1.05 + 0.05)
    others = [v for k, v in per_kernel.items() if k != kernel and k not in equivalent]
    kernel_conf = 1 - mse / min(others) if others else 0.0
    # sigma: the grid values whose error stays within 10% (+ rounding) of the best, for the best kernel
    near = [s for (k, s), v in errors.items() if k == kernel and v <= mse * 1.1 + 0.1]
    span = SIGMA_GRID[-1] - SIGMA_GRID[0]
    result = {"kernel": kernel, "kernel_equivalent": equivalent, "kernel_confidence": round(max(0.0, kernel_conf), 3),
              "sigma": sigma, "sigma_range": [min(near), max(near)],
              "sigma_confidence": round(1 - (max(near) - min(near)) / span, 3), "lowres_mse": round(mse, 4),
              "lowres_mse_per_kernel": {k: round(v, 4) for k, v in per_kernel.items()}}
    if max(near) - min(near) > span / 2:
        result.update(sigma=None, sigma_reason=f"blur not identifiable: sigma {min(near)}-{max(near)} fit equally")
    return result


def _residual_stats(img: np.ndarray, size: int, kernel: str) -> tuple[float, float]:
    """(luma, chroma) std of what the low-res span cannot explain."""
    res = column_residual(ycbcr(img), size, kernel)
    return float(res[0].std()), float(res[1:].std())


def estimate_noise(lq: np.ndarray, size: int, kernel: str, quality: int | None, subsampling: str) -> dict:
    """Noise std (0-255 units) and colour vs grey, by simulating both kinds on the low-res projection
    (then the found JPEG) and matching the residual's luma (std) and chroma (kind)."""
    observed = _residual_stats(lq, size, kernel)
    a, _, _ = _upsampler(size, lq.shape[0], kernel)
    low = np.moveaxis(project(lq, size, kernel), -1, 0)
    clean = np.clip(np.rint(np.moveaxis(a @ low @ a.T, 0, -1)), 0, 255).astype(np.uint8)
    curves = {}
    for kind in ("colour", "grey"):
        stats = []
        for std in NOISE_GRID:
            sim = ops.add_gaussian_noise(clean, std, seed=0, grey=kind == "grey")
            if quality is not None:  # this project's encoder (OpenCV, 4:2:0) where it applies
                sim = ops.jpeg(sim, quality) if subsampling == "4:2:0" else jpeg_pil(sim, quality, subsampling)
            stats.append(_residual_stats(sim, size, kernel))
        curves[kind] = np.array(stats)
    fits, ranges = {}, {}
    for kind, stats in curves.items():
        luma = np.maximum.accumulate(stats[:, 0])
        std = float(np.interp(observed[0], luma, NOISE_GRID))
        fits[kind] = (std, float(np.interp(std, NOISE_GRID, stats[:, 1])))
        # where JPEG removes most of the noise the curve is flat: +-5% of the residual spans many stds
        ranges[kind] = [round(float(np.interp(observed[0] * f, luma, NOISE_GRID)), 3) for f in (0.95, 1.05)]
    floor = float(curves["colour"][0, 0])
    result = {"residual_luma": round(observed[0], 4), "residual_chroma": round(observed[1], 4),
              "simulated_chroma": {k: round(v[1], 4) for k, v in fits.items()}}
    if observed[0] <= floor * 1.15 + 0.05:
        result.update(std=0.0, std_confidence=0.5, colour=None,
                      reason="no noise above the floor of rounding and JPEG (std below ~1 not identifiable)")
        return result
    gap = abs(fits["colour"][1] - fits["grey"][1])
    kind = min(fits, key=lambda k: abs(fits[k][1] - observed[1]))
    result.update(std=round(fits[kind][0], 3), std_range=ranges[kind], std_confidence=round(1 - floor / observed[0], 3),
                  colour=kind == "colour")
    if gap < 0.3:  # the kind is unknown, and grey noise of std x reads as colour noise of std ~1.5x in luma
        both = ranges["colour"] + ranges["grey"]
        result.update(colour=None, std=round(fits["colour"][0], 3), std_range=[min(both), max(both)],
                      reason=f"colour and grey noise leave the same chroma (gap {gap:.2f}); std assumes colour, "
                             "std_range covers both")
    else:
        result["colour_confidence"] = round(min(1.0, max(0.0, 1 - abs(fits[kind][1] - observed[1]) / gap)), 3)
    return result


def fit_pair(gt: np.ndarray, lq: np.ndarray) -> dict:
    """Every estimate for one (GT, LQ) pair of uint8 RGB images (square; LQ not larger than GT)."""
    ops.check_image(gt)
    ops.check_image(lq)
    lowres = estimate_lowres(lq)
    size, up = lowres["size"], lowres["kernel"]
    low = project(lq, size, up)
    down = estimate_down(gt, low)
    jpeg_hi = estimate_jpeg_grid(lq)
    jpeg_lo = estimate_jpeg_grid(np.clip(np.rint(low), 0, 255).astype(np.uint8)) if size >= 24 else {
        "quality": None, "reason": f"low-res image too small ({size} px) for an 8x8 lattice test"}
    after = jpeg_hi["quality"] is not None
    before = not after and jpeg_lo.get("quality") is not None
    jpeg = {"grid": lq.shape[0] if after else (size if before else None), "at_lq_grid": jpeg_hi, "at_lowres": jpeg_lo}
    quality = jpeg_hi["quality"] if after else jpeg_lo.get("quality")
    jpeg["quality"] = quality
    if after:
        jpeg["subsampling"] = estimate_subsampling(lq, quality, tuple(jpeg_hi["offset"]))
    noise = estimate_noise(lq, size, up, quality if after else None,
                           jpeg.get("subsampling", {}).get("value", "4:2:0"))
    order = _order(after, before, noise)
    return {"gt_size": gt.shape[0], "lq_size": lq.shape[0], "lowres": lowres, "r": round(gt.shape[0] / size, 3),
            "down": down, "jpeg": jpeg, "noise": noise, "order": order}


def _order(jpeg_after: bool, jpeg_before: bool, noise: dict) -> dict:
    """Noise and JPEG after the upsampling (`official`) or before it (`eq10-literal`), from where they sit."""
    noisy = (noise.get("std") or 0) > 0
    if jpeg_after or noisy:
        why = "JPEG lattice on the LQ grid" if jpeg_after else "noise the low-res image cannot carry"
        return {"value": "official", "confidence": 0.9 if jpeg_after and noisy else 0.7, "evidence": why}
    if jpeg_before:
        return {"value": "eq10-literal", "confidence": 0.7,
                "evidence": "JPEG lattice on the low-res image, none on the LQ grid, no noise at the LQ grid"}
    return {"value": None, "confidence": 0.0, "reason": "no JPEG and no noise found: the order is not identifiable"}


def preset_agreement(result: dict, preset) -> dict:
    """Which identified estimates of one pair fall inside an Eq. (10) preset's ranges and choices."""
    checks = {"order": None if result["order"]["value"] is None else result["order"]["value"] == preset.order,
              "r": preset.downsample[0] <= result["r"] <= preset.downsample[1]}
    down, noise, quality = result["down"], result["noise"], result["jpeg"]["quality"]
    if down["sigma"] is not None:
        checks["sigma"] = preset.sigma[0] - 0.25 <= down["sigma"] <= preset.sigma[1] + 0.25
    checks["noise"] = preset.noise[0] - 1 <= noise["std"] <= preset.noise[1] + 1
    if noise.get("colour") is not None:
        checks["colour_noise"] = noise["colour"] != preset.grey_noise
    if quality is not None:
        lo, hi = preset.jpeg_quality
        lo, hi = (100 - hi, 100 - lo) if preset.jpeg_quality_complement else (lo, hi)
        checks["jpeg_quality"] = lo <= quality <= hi
    for step, key in (("up", "upsample_interpolation"), ("down", "downsample_interpolation")):
        found = result["lowres"] if step == "up" else down
        kernels = [found["kernel"], *found["kernel_equivalent"]]
        checks[f"{step}_kernel"] = PRESET_KERNEL.get(getattr(preset, key)) in kernels
    decided = [v for v in checks.values() if v is not None]
    return {"checks": checks, "agreement": round(sum(decided) / len(decided), 4)}


def input_quality(gt: np.ndarray, lq: np.ndarray) -> dict:
    """PSNR/SSIM of the LQ brought to the GT size with PIL bicubic (how hard the set is)."""
    import torch

    from bench.metrics.pixel import psnr_values, ssim_values

    up = np.asarray(Image.fromarray(lq).resize(gt.shape[1::-1], Image.BICUBIC))
    pair = [torch.from_numpy(np.ascontiguousarray(x)[None]).permute(0, 3, 1, 2) for x in (up, gt)]
    return {"psnr": round(psnr_values(*pair)[0], 4), "ssim": round(ssim_values(*pair)[0], 4)}


def summarise(results: dict[str, dict]) -> dict:
    """Per-preset mean agreement over the pairs, the best reading, and the set's input PSNR/SSIM."""
    from bench.degradations.presets import PRESETS

    presets = {name: p for name, p in PRESETS.items() if hasattr(p, "order")}
    readings = {name: round(float(np.mean([preset_agreement(r, p)["agreement"] for r in results.values()])), 4)
                for name, p in presets.items()}
    best = max(readings, key=readings.get)
    return {"n_images": len(results), "preset_agreement": readings, "best_preset": best,
            "input_psnr": round(float(np.mean([r["input"]["psnr"] for r in results.values()])), 4),
            "input_ssim": round(float(np.mean([r["input"]["ssim"] for r in results.values()])), 4)}


def fit_folders(gt_dir, lq_dir, progress=None) -> dict:
    """Fit every LQ in lq_dir against the GT with the same file stem; returns {"images", "summary"}."""
    from bench.errors import BenchError
    from bench.io import read_rgb8
    from bench.metrics.evaluate import pair_folders

    pairs, _, _ = pair_folders(gt_dir, lq_dir)
    results = {}
    for pair in pairs if progress is None else progress(pairs):
        gt, lq = read_rgb8(pair.gt), read_rgb8(pair.pred)
        if gt.shape[0] != gt.shape[1] or lq.shape[0] != lq.shape[1] or lq.shape[0] > gt.shape[0]:
            raise BenchError(f"{pair.pred} ({lq.shape[1]}x{lq.shape[0]}) vs {pair.gt} ({gt.shape[1]}x{gt.shape[0]}): "
                             "the fit needs square images and an LQ no larger than its GT")
        result = fit_pair(gt, lq)
        result["input"] = input_quality(gt, lq)
        results[pair.id] = result
    return {"images": results, "summary": summarise(results)}
