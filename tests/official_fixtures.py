"""Rebuild the golden-vector checkpoints of ../shared/fixtures/official (README there, section 1-4).

Only data lives in ../shared: the fill rules are re-implemented here from the README so that the
checkpoint handed to an adapter has exactly the official layout (wrapper keys, prefixes, names).
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import shared_path


def load_spec(model_id: str) -> tuple[dict, dict, dict]:
    folder = shared_path("fixtures", "official", model_id)
    spec = json.loads((folder / "spec.json").read_text())
    stored = torch.load(folder / "stored.pt", map_location="cpu", weights_only=True)
    expected = torch.load(folder / "expected.pt", map_location="cpu", weights_only=True)
    return spec, stored, expected


def make_tensor(entry: dict, stored: dict) -> torch.Tensor:
    name, shape, fill = entry["name"], tuple(entry["shape"]), entry["fill"]
    dtype = getattr(torch, entry.get("dtype", "float32"))
    if fill == "stored":
        return stored[name].clone()
    if fill == "zero":
        return torch.zeros(shape, dtype=dtype)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    if fill == "randn":
        t = torch.randn(shape, generator=g)
    elif fill == "fanin":
        t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    elif fill == "small":
        t = torch.randn(shape, generator=g) * 0.01
    elif fill == "bn_var":
        t = torch.rand(shape, generator=g) + 0.5
    elif fill == "bn_mean":
        t = torch.randn(shape, generator=g) * 0.1
    else:
        raise ValueError(f"unknown fill {fill!r} for {name}")
    if entry.get("scale") is not None:
        t = t * entry["scale"]
    return t.to(dtype)


def check_fills(spec: dict, stored: dict) -> None:
    """The README's `fill_checks`: confirms this torch draws the same random streams."""
    entries = {e["name"]: e for e in spec["keys"] + spec["extra_entries"]}
    for check in spec["fill_checks"]:
        t = make_tensor(entries[check["name"]], stored)
        assert math.isclose(t.double().sum().item(), check["sum_float64"], rel_tol=1e-6, abs_tol=1e-6), check["name"]
        assert t.flatten()[:4].tolist() == check["first4"], check["name"]


def official_checkpoint(model_id: str, spec: dict, stored: dict) -> dict:
    """The released-file layout of README section 2, filled with the fixture's tensors."""
    keys = {e["name"]: make_tensor(e, stored) for e in spec["keys"]}
    extras = {e["name"]: make_tensor(e, stored) for e in spec["extra_entries"]}
    if model_id == "gfpgan_v1_clean_512":
        return {"params_ema": keys}
    if model_id == "gpen_bfr_512":
        return keys
    if model_id in ("glean_ffhq_16x", "panini_mfr", "panini_sr"):  # mmcv restorer checkpoints
        state = {"generator." + k: v for k, v in keys.items()} | extras
        return {"meta": {"mmedit_version": "fixture"}, "state_dict": state, "optimizer": {}}
    if model_id == "psp_celebs_sr":
        opts = dict(spec["checkpoint_layout"]["opts"], device="cpu")
        return {"state_dict": keys, "opts": opts, "latent_avg": stored["latent_avg"]}
    raise ValueError(model_id)


def fixture_input(spec: dict) -> torch.Tensor:
    """README section 3, as [0, 1] RGB (what `Method.restore` takes) and checked against the spec sums."""
    path = shared_path(*spec["input"]["image"].split("/"))
    array = np.asarray(Image.open(path).convert("RGB"))
    lq = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float()
    native = lq / 127.5 - 1.0
    if "resize" in spec["input"]:
        size = tuple(spec["input"]["shape"][-2:])
        native = F.interpolate(native, size=size, mode="bilinear", align_corners=False)
    assert math.isclose(native.double().sum().item(), spec["input"]["tensor_sum"], rel_tol=1e-6)
    return lq / 255.0


def compare(spec: dict, expected: dict, out: torch.Tensor, intermediates: dict) -> dict:
    """Max |got - expected| / atol for every expected entry (README section 4.5); all must be <= 1."""
    atol = spec["tolerance"]["output"]["atol"]
    got = {
        "out_pool8": F.avg_pool2d(out, 8),
        "out_mean": out.mean((0, 2, 3)),
        "out_std": out.std((0, 2, 3)),
        "sample_val": out.reshape(-1)[expected["sample_idx"]],
    }
    ratios = {k: (got[k] - expected[k]).abs().max().item() / atol for k in got}
    for name, tensor in intermediates.items():
        tol = spec["tolerance"]["intermediates"][name]
        ratios[name] = (tensor.reshape(expected[name].shape) - expected[name]).abs().max().item() / tol
    return ratios
