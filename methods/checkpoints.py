"""Reading foreign checkpoints and loading them strictly, with errors that name the keys.

Every official-checkpoint converter in `bench.methods` is a pure function `state_dict -> state_dict`
(our key names); these helpers do the I/O around it: read a file or accept a loaded dict, pick the
wrapper entry, strip prefixes, and load with `strict=True` semantics but a readable error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.messages import short_list


def read_checkpoint(source: str | Path | Mapping[str, Any], what: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint as a dict: `source` is a path (loaded with weights_only=True) or an already loaded dict."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BenchError(f"{what}: file {path} does not exist; pass an existing checkpoint path") from None
    except Exception as exc:  # corrupted file, pickle with disallowed types, ...
        raise BenchError(f"{what}: cannot read {path} with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(loaded, Mapping):
        raise BenchError(f"{what}: {path} holds a {type(loaded).__name__}, expected a dict of tensors")
    return dict(loaded)


def take_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries whose key starts with `prefix`, with the prefix removed (others are dropped)."""
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}



def check_keys(module: torch.nn.Module, state: Mapping[str, Any], what: str) -> None:
    """Raise BenchError naming missing / unexpected / wrongly shaped keys (strict-load preflight)."""
    own = module.state_dict()
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
        for key in sorted(set(own) & set(state))
        if tuple(getattr(state[key], "shape", ())) != tuple(own[key].shape)
    ]
    kinds = (("missing key(s)", missing), ("unexpected key(s)", unexpected),
             ("key(s) with a wrong shape (file vs model)", wrong_shape))
    problems = [f"{len(keys)} {kind}: {short_list(keys)}" for kind, keys in kinds if keys]
    if problems:
        raise BenchError(
            f"{what}: the checkpoint does not match the model: " + "; ".join(problems)
            + ". Check that the file is the right checkpoint for this method and configuration."
        )


def load_strict(module: torch.nn.Module, state: Mapping[str, Any], what: str) -> torch.nn.Module:
    """`module.load_state_dict(state, strict=True)` with a BenchError that lists the offending keys."""
    check_keys(module, state, what)
    module.load_state_dict(dict(state), strict=True)
    return module
