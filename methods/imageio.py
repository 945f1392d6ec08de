"""PNG in, PNG out for methods that work on folders: float32 NCHW RGB in [0, 1] in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.errors import BenchError
from bench.io import write_png as atomic_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def list_ids(folder) -> list[str]:
    """Sorted file stems of the images in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder}: not a folder of images")
    return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def find_image(folder, image_id: str) -> Path:
    """The image file of `image_id` in `folder`, whatever its suffix; a BenchError if absent."""
    folder = Path(folder)
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise BenchError(f"{folder}: no image named '{image_id}' (looked for {', '.join(IMAGE_SUFFIXES)})")


def read_rgb8(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a BenchError naming the file when it is missing or unreadable."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: cannot read the image ({exc})") from exc


def read_image(path) -> torch.Tensor:
    """(3, H, W) float32 RGB in [0, 1]."""
    return torch.from_numpy(read_rgb8(path)).permute(2, 0, 1).float().div_(255)


def read_uint8_batch(paths) -> torch.Tensor:
    """(N, 3, H, W) uint8 RGB from files of one size (a BenchError names the sizes otherwise)."""
    images = [read_rgb8(p) for p in paths]
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise BenchError(f"images of one batch differ in size: {sorted(sizes)} ({paths[0]} ...)")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def read_batch(folder, ids) -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] of the images `ids` in `folder`, whatever their suffix."""
    return read_uint8_batch([find_image(folder, i) for i in ids]).float().div_(255)


# How a method's float result in [0, 1] becomes 8 bits: a per-method protocol choice (`Method.quantize`).
QUANTIZE = {
    "round": "x * 255 rounded to nearest (BasicSR's tensor2img, Panini-Net)",
    "truncate": "x * 255 truncated toward zero (numpy astype(uint8), as GPEN's tensor2img does)",
}


def quantize_uint8(images: torch.Tensor, quantize: str = "round") -> torch.Tensor:
    """Float images in [0, 1] (any shape) -> uint8 tensor with the `QUANTIZE` rule named."""
    scaled = images.detach().float().clamp(0, 1).mul(255)
    if quantize == "round":
        scaled = scaled.round()
    elif quantize != "truncate":
        raise BenchError(f"unknown quantize {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    return scaled.to(torch.uint8)


def to_uint8(image: torch.Tensor, quantize: str = "round") -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8 (see `QUANTIZE`)."""
    return quantize_uint8(image, quantize).permute(1, 2, 0).cpu().numpy()


def write_png(path, image: torch.Tensor, quantize: str = "round") -> None:
    """Atomic PNG write of a (3, H, W) image in [0, 1] at 8 bits (see `QUANTIZE`)."""
    atomic_png(path, to_uint8(image, quantize))
