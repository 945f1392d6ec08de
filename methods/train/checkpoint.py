"""Training checkpoints: one atomic file per save, loaded with `weights_only=True`.

A checkpoint holds everything that decides what happens next: module and optimiser states,
gradient scalers, the iteration, every RNG state (torch CPU/CUDA and the trainer's own generators)
and the config with its fingerprint. The data order and the per-sample randomness are pure
functions of (seed, epoch, index) (see `data.py`), so the iteration alone fixes where the data
stream resumes; the learning-rate schedules are pure functions of the iteration too.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch

from bench.errors import BenchError

CHECKPOINT_NAME = re.compile(r"^iter_(\d{8})\.pt$")


def checkpoint_path(folder: Path, iteration: int) -> Path:
    return Path(folder) / f"iter_{iteration:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in `folder`, oldest first (by iteration in the name)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict:
    """Load a checkpoint on the CPU with the safe unpickler; a broken file is a BenchError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise BenchError(f"checkpoint {path} does not exist") from exc
    except Exception as exc:
        raise BenchError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                         "delete it to resume from the previous one") from exc


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (keep <= 0 keeps all)."""
    if keep <= 0:
        return
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    missing = set(generators) - set(state["generators"])
    if missing:
        raise BenchError(f"checkpoint lacks the RNG state of {sorted(missing)}; it was written by another trainer")
    for name, g in generators.items():
        g.set_state(state["generators"][name])


# --------------------------------------------------------------------------------------------------
# Trained Panini-Net weights for inference (`create_method(..., weights=...)`)


def panini_config_to_data(config) -> dict:
    """A PaniniConfig as weights_only-loadable data (tuples -> lists, int dict keys -> str)."""
    import dataclasses

    def plain(obj):
        if isinstance(obj, dict):
            return {str(k): plain(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [plain(v) for v in obj]
        return obj

    return plain(dataclasses.asdict(config))


def panini_config_from_data(data: dict, what: str):
    """The inverse of `panini_config_to_data`; a field this version does not know is a BenchError."""
    import dataclasses

    from bench.methods.panini import PaniniConfig

    known = {f.name for f in dataclasses.fields(PaniniConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BenchError(f"{what}: its model configuration has unknown field(s) {', '.join(unknown)}; "
                         "it was written by another version of this suite")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if values.get("generator_channels") is not None:
        values["generator_channels"] = {int(k): int(v) for k, v in values["generator_channels"].items()}
    return PaniniConfig(**values)


def trained_panini(checkpoint: dict, what: str):
    """(state_dict, PaniniConfig) from a file `bench train panini` wrote, None for any other file.

    Reads `generator.pth` (`state_dict` + `panini_config`) and training checkpoints
    (`checkpoints/iter_*.pt`: the generator module, the model configuration rebuilt from the saved
    training config). A `bench train udrl` file is an error that says where it belongs.
    """
    if checkpoint.get("task") == "udrl" or checkpoint.get("arch") == "panini-dre":
        raise BenchError(f"{what} was written by `bench train udrl`: it holds a degradation encoder, not a "
                         "Panini-Net; give its dre.pth to `bench train panini` as model.dre")
    if "panini_config" in checkpoint:
        return dict(checkpoint["state_dict"]), panini_config_from_data(checkpoint["panini_config"], what)
    if checkpoint.get("task") == "panini" and "modules" in checkpoint:
        from bench.methods.train.config import from_dict
        from bench.methods.train.panini import panini_model_config

        config = from_dict("panini", checkpoint["config"], where=f"{what} (its saved training config)")
        return dict(checkpoint["modules"]["generator"]), panini_model_config(config.model)
    return None
