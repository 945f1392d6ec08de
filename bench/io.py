"""Every file the suite reads or writes goes through here: atomic writes, hashes, strict JSON / JSON
lines, and images (one extension set, one decoder, one float -> uint8 converter, one PNG encoder).

Heavy libraries (numpy, Pillow, OpenCV, torch) are imported on first use, so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.errors import BenchError

# PNG is lossless whatever the settings; these are the fastest at equal size (measured: 19 ms vs 48 ms
# for OpenCV's defaults per 1024 face, files within 2 %). Test sets record them in testset.json.
PNG_ENCODING = {"zlib_level": 1, "filter": "up", "strategy": "huffman-only"}

# The one set of image suffixes every folder reader accepts (compared lower-cased).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


# ----------------------------------------------------------------------------- bytes and text

def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers never see a partial file.

    `durable=False` skips the fsync, for callers that flush a batch of files later (one wait, not one per file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- JSON and JSON lines

def _json_default(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def strict_json(value):
    """`value` with every non-finite float replaced by null, so every JSON parser reads the file.

    Strict JSON has no Infinity/NaN. A dict entry `key: inf` becomes `key: null` plus
    `key_nonfinite: "inf"` (or "-inf", "nan"), e.g. the PSNR of identical images; in a list the
    element becomes null and the enclosing dict gets `key_nonfinite` with the count of each kind.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = strict_json(item)
            reason = _nonfinite_reason(item)
            if reason:
                out[f"{key}_nonfinite"] = reason
        return out
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nonfinite_reason(value) -> str | dict | None:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        kinds = [str(v) for v in value if isinstance(v, float) and not math.isfinite(v)]
        return {kind: kinds.count(kind) for kind in sorted(set(kinds))} or None
    return None


def as_float(value, nonfinite: str | None = None) -> float:
    """A number read back from JSON: null is the non-finite value named by its `<key>_nonfinite` field
    (pass it as `nonfinite`; NaN without it). Older files stored "inf"/"nan" strings: read as well."""
    if value is None:
        return float(nonfinite) if isinstance(nonfinite, str) else math.nan
    return float(value)


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON (`strict_json`: no Infinity/NaN tokens); with `indent`, keys are sorted for stable diffs."""
    return json.dumps(strict_json(value), indent=indent, sort_keys=indent is not None, default=_json_default,
                      ensure_ascii=False, allow_nan=False)


def dumps_line(value: Any) -> str:
    """One canonical strict JSON line (sorted keys, no spaces), so equal content gives equal bytes and hashes."""
    return json.dumps(strict_json(value), sort_keys=True, separators=(",", ":"), default=_json_default,
                      ensure_ascii=False, allow_nan=False)


def write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, dumps(value, indent=2) + "\n")


def _read_parsed(path: str | Path, parse, kind: str, what: str, fix: str) -> Any:
    """`parse` of a UTF-8 file; a missing, unreadable, undecodable or unparsable file is a BenchError naming it."""
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{label} does not exist") from None
    except OSError as exc:  # a folder, no permission, ...
        raise BenchError(f"{label} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError and UnicodeDecodeError alike
        raise BenchError(f"{label} is not valid {kind} ({exc}); {fix}") from None


def read_json(path: str | Path) -> Any:
    """A JSON file the bench wrote itself (run state); a broken one is rewritten by running again."""
    return _read_parsed(path, json.loads, "JSON", "", "delete it and run again")


def read_toml(path: str | Path, what: str = "TOML file") -> dict:
    """A TOML file a user wrote (`what`: its role, for the message)."""
    import tomllib

    return _read_parsed(path, tomllib.loads, "TOML", what, "fix the file")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(dumps_line(row) + "\n" for row in rows))


def read_jsonl(path: str | Path, tolerate_partial_last_line: bool = False) -> list[dict]:
    """Rows of a JSON-lines file ([] when it does not exist). A bad line is a BenchError naming it,
    except a cut-off last line (a killed appender) when `tolerate_partial_last_line`: it is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if tolerate_partial_last_line and number == len(lines):
                break
            raise BenchError(f"{path}:{number}: not valid JSON ({exc}); the file is damaged, "
                             "rebuild or delete it") from None
    return rows


# ----------------------------------------------------------------------------- images

class BadImageError(BenchError):
    """A file that cannot be decoded as an image."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def image_files(folder: str | Path) -> dict[str, Path]:
    """stem -> file for the images directly in `folder`, in name order; two files with one stem are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder} does not exist or is not a folder of images")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            if path.stem in found:
                raise BenchError(f"{found[path.stem]} and {path} share the id '{path.stem}'; keep one of them")
            found[path.stem] = path
    return found


def decode_rgb8(data: bytes, name: str | Path):
    """Image bytes -> (uint8 RGB HWC numpy (writable), note on any conversion made or None).

    Grey, palette, RGBA/LA (alpha dropped), CMYK and YCbCr go through Pillow's RGB conversion. 16-bit
    grey (I;16*) is scaled to 8 bits by its high byte (65535 -> 255, 257*v -> v), never saturated; 16-bit
    RGB PNGs keep their high byte too (Pillow). Float images and unreadable bytes raise BadImageError.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # forces a full decode: truncated files fail here
            mode = im.mode
            if mode in _SIXTEEN_BIT_GREY:
                grey = (np.asarray(im).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
                rgb, note = np.repeat(grey[:, :, None], 3, axis=2), f"{mode} 16-bit grey -> 8-bit RGB (high byte)"
            elif mode == "F":
                raise BadImageError(f"{name}: 32-bit float images are not supported; save it as an 8- or "
                                    "16-bit PNG")
            else:
                rgb = np.array(im.convert("RGB") if mode != "RGB" else im)
                note = None if mode == "RGB" else f"{mode} -> RGB"
    except UnidentifiedImageError:  # its text shows the in-memory buffer, not the file
        raise BadImageError(f"{name}: not a readable image (not an image file, or a format Pillow cannot "
                            "identify)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"{name}: not a readable image ({exc})") from None
    if data[:8] == _PNG_SIGNATURE and len(data) > 24 and data[24] == 16:
        note = f"16-bit {mode} PNG -> 8-bit RGB (high byte)"
    return np.ascontiguousarray(rgb), note


def read_rgb8(path: str | Path):
    """(H, W, 3) uint8 RGB of the image file `path`; a BenchError naming the file when missing or unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the image ({exc.strerror or exc})") from None
    return decode_rgb8(data, path)[0]


def encode_png(rgb) -> bytes:
    """uint8 RGB HWC numpy -> PNG bytes with `PNG_ENCODING` (OpenCV, imported on first use)."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_ENCODING["zlib_level"], cv2.IMWRITE_PNG_FILTER,
              cv2.IMWRITE_PNG_FILTER_UP, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("OpenCV failed to encode a PNG")
    return buf.tobytes()


def write_png(path: str | Path, image, quantize: str = "round") -> None:
    """Atomic PNG write of a uint8 RGB HWC numpy image or a float (3, H, W) tensor in [0, 1] (`to_uint8`)."""
    import numpy as np

    atomic_write_bytes(path, encode_png(image if isinstance(image, np.ndarray) else to_uint8(image, quantize)))


# ----------------------------------------------------------------------------- image folders as tensors

# How a method's float result in [0, 1] becomes 8 bits: a per-method protocol choice (`Method.quantize`).
QUANTIZE = {
    "round": "x * 255 rounded to nearest (BasicSR's tensor2img, Panini-Net)",
    "truncate": "x * 255 truncated toward zero (numpy astype(uint8), as GPEN's tensor2img does)",
}


def quantize_uint8(images, quantize: str = "round"):
    """float tensor in [0, 1] -> uint8 tensor of the same shape and device, clamped, with the `QUANTIZE` rule."""
    import torch

    scaled = images.detach().float().clamp(0, 1).mul(255)
    if quantize == "round":
        scaled = scaled.round()
    elif quantize != "truncate":
        raise BenchError(f"unknown quantize {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    return scaled.to(torch.uint8)


def to_uint8(images, quantize: str = "round"):
    """float tensor in [0, 1], channels first ((C, H, W) or (N, C, H, W)) -> uint8 numpy, channels last."""
    return quantize_uint8(images, quantize).movedim(-3, -1).contiguous().cpu().numpy()


def list_ids(folder: str | Path) -> list[str]:
    """Sorted file stems of the images in `folder`."""
    return sorted(image_files(folder))


def find_image(folder: str | Path, image_id: str) -> Path:
    """The image file of `image_id` in `folder`, whatever its suffix; a BenchError if absent."""
    for suffix in sorted(IMAGE_EXTENSIONS):
        path = Path(folder) / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise BenchError(f"{folder}: no image named '{image_id}' (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")


def read_image(path: str | Path):
    """(3, H, W) float32 RGB in [0, 1]."""
    import torch

    return torch.from_numpy(read_rgb8(path)).permute(2, 0, 1).float().div_(255)


def read_uint8_batch(paths):
    """(N, 3, H, W) uint8 RGB from files of one size (a BenchError names the sizes otherwise)."""
    import numpy as np
    import torch

    images = [read_rgb8(p) for p in paths]
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise BenchError(f"images of one batch differ in size: {sorted(sizes)} ({paths[0]} ...)")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def read_batch(folder: str | Path, ids):
    """(N, 3, H, W) float32 in [0, 1] of the images `ids` in `folder`, whatever their suffix."""
    return read_uint8_batch([find_image(folder, i) for i in ids]).float().div_(255)
