"""Thumbnails and zoomed crops for the report's image grids, as PNG data URIs (self-contained HTML).

Crops are fractional boxes on aligned faces (eyes, mouth): the same box is cut from the LQ, every
method's output and the GT, each at full resolution, then scaled to a common thumbnail size. LQ
images are upscaled with nearest neighbour so their pixels stay visible.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

THUMB = 224
CROP = 112


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _encode(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return data_uri(buffer.getvalue())


def open_rgb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError):
        return None


def thumbnail(image: Image.Image, size: int = THUMB, nearest: bool = False) -> str:
    resample = Image.Resampling.NEAREST if nearest and image.width < size else Image.Resampling.LANCZOS
    return _encode(image.resize((size, size), resample))


def crop(image: Image.Image, box: list[float], size: int = CROP, nearest: bool = False) -> str:
    w, h = image.size
    x0, y0, x1, y1 = (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h))
    part = image.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    height = max(1, round(size * part.height / part.width))
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS
    return _encode(part.resize((size, height), resample))


def tile(path: Path, crops: dict[str, list[float]], nearest: bool = False) -> dict | None:
    """{'thumb': uri, 'crops': {name: uri}, 'size': 'WxH'} or None when the file is missing/unreadable."""
    image = open_rgb(path)
    if image is None:
        return None
    return {"thumb": thumbnail(image, nearest=nearest),
            "crops": {name: crop(image, box, nearest=nearest) for name, box in crops.items()},
            "size": f"{image.width}×{image.height}"}
