"""Degradation steps: pure functions on uint8 RGB HWC numpy images.

Every function takes an image and explicit parameters and returns a new uint8 RGB image; nothing
reads or changes global random state (noise takes a seed). OpenCV does the pixel work (10x faster
than torch on CPU, see spec/machine.md section 2); callers set `cv2.setNumThreads` per process.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

# Interpolations by name, so the choice is data that a manifest can record.
CV2_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}


def check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3), got a {desc}")


def blur_kernel_size(sigma: float) -> int:
    """Odd kernel size covering +-3 sigma (the usual truncation); recorded in manifests."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur with kernel size `blur_kernel_size(sigma)`, reflect-101 borders."""
    check_image(img)
    if sigma <= 0:
        return img.copy()
    k = blur_kernel_size(sigma)
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def downsampled_size(size: int, factor: float) -> int:
    """Side length after downsampling `size` by `factor`: round(size / factor), at least 1 pixel."""
    return max(1, round(size / factor))


def resize(img: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """Resize to size x size with a named OpenCV interpolation."""
    check_image(img)
    if interpolation not in CV2_INTERPOLATION:
        raise ValueError(f"unknown interpolation '{interpolation}'; choose from {sorted(CV2_INTERPOLATION)}")
    if img.shape[:2] == (size, size):
        return img.copy()
    return cv2.resize(img, (size, size), interpolation=CV2_INTERPOLATION[interpolation])


def downsample(img: np.ndarray, factor: float, interpolation: str = "area") -> np.ndarray:
    """Downsample by `factor` (square image) to `downsampled_size(H, factor)` pixels.

    INTER_AREA averages each output pixel's footprint: the antialiased choice for large factors.
    """
    return resize(img, downsampled_size(img.shape[0], factor), interpolation)


def resize_pil_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """PIL BILINEAR resize (antialiased triangle filter when shrinking), as torchvision Resize does.

    This is how the official 16x SR inputs were made: it reproduces them within 1 grey level.
    """
    check_image(img)
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def add_gaussian_noise(img: np.ndarray, std: float, seed: int, grey: bool = False) -> np.ndarray:
    """Add N(0, std^2) noise (std in 0-255 units), then clip and round to uint8.

    The noise comes from `numpy.random.default_rng(seed)`; `grey` draws one field for all channels.
    """
    check_image(img)
    if std <= 0:
        return img.copy()
    rng = np.random.default_rng(seed)
    h, w, _ = img.shape
    noise = rng.standard_normal((h, w, 1 if grey else 3), dtype=np.float32) * np.float32(std)
    return np.clip(np.rint(img.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at `quality` (1-100) with OpenCV's libjpeg (4:2:0 chroma)."""
    check_image(img)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)  # OpenCV's encoder expects BGR
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
