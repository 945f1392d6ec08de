"""Reading source image folders (CelebA-HQ, FFHQ, any folder) as 8-bit RGB, with clear errors."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from bench.errors import BenchError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadImageError(BenchError):
    """A source file that cannot be decoded as an image."""


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (the id order every tool uses)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"source folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise BenchError(f"source folder {folder} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise BenchError(f"{stems[path.stem]} and {path} share the id '{path.stem}'; keep one of them")
        stems[path.stem] = path
    return files


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_rgb8(data: bytes, name: str) -> tuple[np.ndarray, str | None]:
    """Decode image bytes to uint8 RGB HWC; returns the image and a note on any conversion made.

    Grey, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted (16-bit keeps the high byte).
    A truncated or non-image file raises BadImageError naming `name`.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # forces a full decode: truncated files fail here
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                grey = (np.asarray(im).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2), f"{mode} 16-bit grey -> 8-bit RGB (high byte)"
            rgb = np.asarray(im.convert("RGB")) if mode != "RGB" else np.asarray(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"{name}: not a readable image ({exc}); remove it or pass --skip-bad") from None
    note = None if mode == "RGB" else f"{mode} -> RGB"
    if data[:8] == _PNG_SIGNATURE and len(data) > 24 and data[24] == 16:
        note = f"16-bit {mode} PNG -> 8-bit RGB (high byte)"
    return np.ascontiguousarray(rgb), note


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
