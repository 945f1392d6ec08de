"""Source image folders (CelebA-HQ, FFHQ, any folder): listing and fitting to the GT size.

Decoding is bench.io's `decode_rgb8`, the one decoder every reader uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.io import IMAGE_EXTENSIONS, image_files


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (the id order every tool uses)."""
    files = list(image_files(folder).values())
    if not files:
        raise BenchError(f"source folder {folder} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def fit_to_square(img: np.ndarray, size: int, name: str, allow_resize: bool) -> tuple[np.ndarray, str | None]:
    """Return `img` as size x size; otherwise error unless `allow_resize` (centre crop + area/bicubic)."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img, None
    if not allow_resize:
        raise BenchError(f"{name} is {w}x{h}, not {size}x{size}; pass --resize to centre-crop and resize it")
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[top : top + side, left : left + side]
    method = "area" if side > size else "bicubic"
    resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
    note = f"{w}x{h} -> centre crop {side}x{side} -> {method} resize to {size}x{size}"
    return resized, note
