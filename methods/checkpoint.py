"""Finding, reading and strictly loading official checkpoints (shared by every adapter).

`read_checkpoint` turns `weights` (None, a path or an already loaded dict) into a dict;
`load_strict` loads a converted state dict and names every missing, unexpected or mis-shaped key.
Converters themselves are pure functions next to each model: official dict in, own keys out.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError


def read_checkpoint(weights: Any, weights_name: str) -> dict:
    """Load `weights` (None = the weights registry's cached `weights_name`, a path, or a dict)."""
    if isinstance(weights, dict):
        return weights
    if weights is None:
        from bench.weights import resolve

        weights = resolve(weights_name)
    path = Path(weights)
    if not path.is_file():
        raise BenchError(f"{path}: checkpoint file not found (expected the '{weights_name}' weights)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        raise BenchError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            f"the file is truncated or not a PyTorch checkpoint: fetch it again with "
            f"`bench weights fetch {weights_name}`"
        ) from exc
    if not isinstance(checkpoint, dict):
        raise BenchError(f"{path}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    return checkpoint


def take(checkpoint: dict, key: str, layout: str) -> Any:
    """`checkpoint[key]`, or a BenchError that names the expected layout and the keys found."""
    if key not in checkpoint:
        raise BenchError(f"checkpoint has no '{key}' entry; expected {layout}; found {_preview(checkpoint)}")
    return checkpoint[key]


def _preview(keys, n: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(map(str, keys[:n]))
    return f"{len(keys)} keys: {shown}" + (", ..." if len(keys) > n else "")


def load_strict(model: torch.nn.Module, state: dict, method: str, layout: str) -> None:
    """Load `state` into `model`; any missing/unexpected key or shape mismatch is a BenchError.

    `layout` describes the official file the converter expected, so the message tells the user
    which checkpoint belongs here (e.g. a GPEN file given to GFP-GAN).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {_preview(missing, 4)}")
        if unexpected:
            parts.append(f"unexpected {_preview(unexpected, 4)}")
        if mismatched:
            parts.append(f"wrong shape {_preview(mismatched, 3)}")
        raise BenchError(
            f"{method}: the checkpoint does not match the expected layout ({layout}): "
            + "; ".join(parts)
            + ". Is it the checkpoint of another method or version?"
        )
    model.load_state_dict(state, strict=True)


def select_prefix(state: dict, prefix: str) -> dict:
    """Entries under `prefix`, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
