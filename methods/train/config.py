"""Typed training configurations: TOML in, frozen dataclasses out, every key and type checked.

A config file is plain data. The bundled presets (`bench/configs/train/*.toml`) are complete files,
one per (task, preset); nothing inherits from anything. Keys left out of a user's file take the
dataclass defaults, which are the values the official code actually ran. An unknown key or a value
of the wrong type is a `BenchError` naming the file and the dotted key.

Fields marked `runtime` (output folder, logging cadence, worker count...) do not change the training
trajectory, so they are left out of the fingerprint that `--resume` compares.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bench
from bench.config import apply_overrides, from_data, setting, to_data, to_toml
from bench.errors import BenchError
from bench.io import read_toml
from bench.messages import pick

CONFIG_DIR = Path(bench.__file__).resolve().parent / "configs" / "train"


def _runtime(default: Any) -> Any:
    return setting(default, runtime=True)


@dataclass(frozen=True)
class RunConfig:
    """How long, how big, where: shared by both trainers."""

    seed: int = 0
    iterations: int = 800_000
    batch_size: int = 2  # global batch over all processes (official MFR: 1 per GPU x 2 GPUs)
    amp: Literal["none", "bf16", "fp16"] = "none"
    device: str = _runtime("auto")  # auto | cpu | cuda | cuda:N
    out_dir: str = _runtime("runs/train")
    workers: int = _runtime(4)
    threads: int = _runtime(0)  # torch intra-op threads; 0: CPU count / max(1, workers), at least 1
    checkpoint_every: int = _runtime(5000)
    keep_checkpoints: int = _runtime(3)
    log_every: int = _runtime(100)
    val_every: int = _runtime(5000)
    progress: bool = _runtime(True)
    tensorboard: bool = _runtime(True)
    stop_after: int = _runtime(0)  # > 0: checkpoint and stop at this iteration (time-sliced jobs); resume later


@dataclass(frozen=True)
class DataConfig:
    """Training images: HQ faces degraded on the fly (the default), or fixed LQ/GT pair folders.

    `source`: a folder (scanned recursively, sorted) or `synthetic` faces; LQ images come from the
    `degradation` preset of `bench.degradations` (its `lq_size` is set to `lq_size`;
    `degradation_options` override the preset's other fields, e.g. narrower ranges for tiny images).
    `pairs = { lq = DIR, gt = DIR }`: the official layout instead (pre-made LQ files matched to GT
    files by stem, one flip decision for both); `source` is then unused.
    Validation: `val_pairs` (same layout), else `val_source` (a folder, or `synthetic` faces never used
    in training), else (both empty) `val_count` images carved from the training data with a seeded
    draw, left out of training and listed in the run's `validation.json`.
    """

    source: str = "synthetic"
    synthetic_count: int = 1000
    pairs: dict[str, str] = field(default_factory=dict)
    gt_size: int = 1024
    lq_size: int = 512
    degradation: str = "official"
    degradation_options: dict[str, Any] = field(default_factory=dict)
    flip: bool = True
    val_source: str = ""
    val_pairs: dict[str, str] = field(default_factory=dict)
    val_count: int = 100


@dataclass(frozen=True)
class MocoModelConfig:
    """The degradation encoder (DRE) and the MoCo wrapper, as `moco/builder.py` ran with defaults."""

    widths: list[int] = field(default_factory=lambda: [64, 128, 256])  # DRE levels; projection dim = last
    input_size: int = 256  # LQ images are PIL-bilinear resized to this (transforms.Resize in main_moco.py)
    queue: int = 8192
    momentum: float = 0.999
    temperature: float = 0.07
    shuffle_bn: bool = True
    # BN groups per process: with shuffle_bn, query and key batches are normalised over different
    # groups, as on several GPUs; 1 process x 1 group lets BN statistics leak the pairing
    bn_splits: int = 1


@dataclass(frozen=True)
class UdrlOptimConfig:
    """SGD as main_moco.py ran it; Adam (betas 0.9/0.999, no momentum key) for short tiny runs.

    Schedules: `step` (x `gamma` at each epoch in `milestones`: the official README's command, epochs
    120 and 160 of 200), `cosine-epoch` (main_moco.py `--cos`, used by `train.sh`: the rate changes once
    per epoch), `cosine` (per-iteration cosine, not an official choice; smooth for short runs) and `constant`.
    """

    name: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: Literal["step", "cosine-epoch", "cosine", "constant"] = "step"
    milestones: list[int] = field(default_factory=lambda: [120, 160])  # epochs
    gamma: float = 0.1


@dataclass(frozen=True)
class UdrlConfig:
    """`bench train udrl`: MoCo pre-training of the DRE on UDRL pairs."""

    run: RunConfig = field(default_factory=lambda: RunConfig(iterations=437_400, batch_size=32))
    data: DataConfig = field(default_factory=lambda: DataConfig(flip=False))
    model: MocoModelConfig = field(default_factory=MocoModelConfig)
    optim: UdrlOptimConfig = field(default_factory=UdrlOptimConfig)


@dataclass(frozen=True)
class PaniniModelConfig:
    """Which network, its size, and where its pretrained parts come from.

    `size` picks `official_config` or `tiny_config` of `bench.methods.panini`; `options` override its
    fields (e.g. `{ out_size = 128, in_size = 64 }`). Weight sources: "registry" (the weights
    registry), "random" (seeded random init, for tests and ablations) or a file path.
    `dre` is the MoCo checkpoint (`bench train udrl` writes one); `dre_trainable = false` is the
    paper's fixed DRE, true what the official code did.
    """

    task: Literal["mfr", "sr16"] = "mfr"
    fusion: Literal["dafi", "catconv"] = "dafi"
    size: Literal["official", "tiny"] = "official"
    options: dict[str, Any] = field(default_factory=dict)
    prior: str = "registry"
    discriminator: str = "registry"
    dre: str = "registry"
    dre_trainable: bool = True


@dataclass(frozen=True)
class LossConfig:
    pixel: float = 1.0
    perceptual: float = 1e-2
    adversarial: float = 1e-2
    vgg: str = "registry"


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 1e-4
    d_lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    min_lr: float = 1e-7
    schedule: Literal["cosine", "constant"] = "cosine"


@dataclass(frozen=True)
class PaniniTrainConfig:
    """`bench train panini`: fine-tuning of Panini-Net (MFR, 16x SR or Cat-Conv)."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: PaniniModelConfig = field(default_factory=PaniniModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: AdamConfig = field(default_factory=AdamConfig)


TASKS = {"udrl": UdrlConfig, "panini": PaniniTrainConfig}


def to_dict(config: Any) -> dict:
    """The config as plain data (saved in checkpoints and final.json)."""
    return to_data(config)


def _task_class(task: str) -> type:
    return pick(TASKS, task, "training task")


def from_dict(task: str, data: dict, where: str = "config") -> Any:
    """Build the task's config from a plain dict (parsed TOML); strict about keys and types."""
    cls = _task_class(task)
    data = dict(data)
    declared = data.pop("task", task)
    if declared != task:
        raise BenchError(f"{where}: this is a '{declared}' config; run `bench train {declared}` with it")
    return from_data(cls, data, where)


def resolve_config_path(name_or_path: str) -> Path:
    """A file path, or the name of a bundled preset (`bench/configs/train/<name>.toml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = CONFIG_DIR / f"{name_or_path}.toml"
    if bundled.is_file():
        return bundled
    names = sorted(p.stem for p in CONFIG_DIR.glob("train-*.toml"))
    raise BenchError(f"config '{name_or_path}' is neither a file nor a bundled preset ({', '.join(names)})")


def load_config(task: str, name_or_path: str, overrides: list[str] = ()) -> Any:
    """Read a TOML config (file or bundled preset), apply `--set` overrides, check everything."""
    path = resolve_config_path(name_or_path)
    data = apply_overrides(read_toml(path), list(overrides), _task_class(task), f"config {path}")
    return from_dict(task, data, where=f"config {path}")


def fingerprint_data(config: Any) -> dict:
    """The config without runtime-only fields: what must match for `--resume`."""
    return to_data(config, runtime=False)


def fingerprint(config: Any) -> str:
    text = json.dumps(fingerprint_data(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two (nested) dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}.{key}" if prefix else key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict) and va and vb:
            out.extend(diff_keys(va, vb, dotted))
        elif va != vb:
            out.append(f"{dotted}: {vb!r} -> {va!r}")
    return out


def dump_toml(config: Any) -> str:
    """The full config as TOML (written next to the run so it can be re-run as is)."""
    return to_toml(config)
