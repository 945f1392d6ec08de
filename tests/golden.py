"""Rebuild the official golden-vector checkpoints (../shared/fixtures/official, README §1-§5)."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_tensor(entry: dict, stored: dict) -> torch.Tensor:
    """The fixture fill rule (README §1), written from its description."""
    name, shape = entry["name"], tuple(entry["shape"])
    dtype = getattr(torch, entry.get("dtype", "float32"))
    fill = entry["fill"]
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


class Fixture:
    def __init__(self, folder: Path, shared: Path):
        self.folder, self.shared = folder, shared
        self.spec = json.loads((folder / "spec.json").read_text())
        self.stored = torch.load(folder / "stored.pt", weights_only=True)
        self.expected = torch.load(folder / "expected.pt", weights_only=True)

    def check_fills(self) -> None:
        by_name = {e["name"]: e for e in self.spec["keys"] + self.spec.get("extra_entries", [])}
        for check in self.spec["fill_checks"]:
            t = make_tensor(by_name[check["name"]], self.stored)
            assert math.isclose(t.double().sum().item(), check["sum_float64"], rel_tol=1e-9, abs_tol=1e-9)
            assert t.reshape(-1)[:4].tolist() == check["first4"], check["name"]

    def released_checkpoint(self) -> dict:
        """The released-file layout (README §2, mmcv restorer checkpoint)."""
        state = {"generator." + e["name"]: make_tensor(e, self.stored) for e in self.spec["keys"]}
        state.update({e["name"]: make_tensor(e, self.stored) for e in self.spec["extra_entries"]})
        return {"meta": {"note": "fixture"}, "state_dict": state, "optimizer": {}}

    def input(self) -> torch.Tensor:
        recipe = self.spec["input"]
        a = np.asarray(Image.open(self.shared / recipe["image"]).convert("RGB"))
        t = (torch.from_numpy(a.copy()).to(torch.float32) / 127.5 - 1.0).permute(2, 0, 1).unsqueeze(0)
        assert math.isclose(t.double().sum().item(), recipe["tensor_sum"], rel_tol=1e-9)
        return t

    def output_stats(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "out_pool8": torch.nn.functional.avg_pool2d(out, 8),
            "out_mean": out.mean((0, 2, 3)),
            "out_std": out.std((0, 2, 3)),
            "sample_val": out.reshape(-1)[self.expected["sample_idx"]],
        }

    def max_errors(self, got: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
        """{name: (max |got - expected|, atol)} for every expected entry that `got` provides."""
        tol = self.spec["tolerance"]
        result = {}
        for name, value in got.items():
            atol = tol["output"]["atol"] if name.startswith(("out_", "sample_")) else tol["intermediates"][name]
            err = (value.detach().float() - self.expected[name].float()).abs().max().item()
            result[name] = (err, atol)
        return result
