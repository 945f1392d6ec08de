"""Experiment files: the typed schema (`ExperimentConfig`), loading with `--set` overrides, $VARS in paths.

An experiment names its test sets (task, preset, seed, count, source), its methods (registry name,
weights, options, analyses), its metrics and the expected-values file it is checked against. Every
key is a field of the dataclasses below; `bench.config` reads files into them strictly (an unknown
key or a wrong value is a `BenchError` naming the file and the dotted key). The runner gets the
typed `Experiment.spec`; run.json stores the same config as plain data (`Experiment.config`).
Standard library only, so the CLI can validate a file without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.config import apply_overrides, from_data, setting, to_data
from bench.errors import BenchError
from bench.io import read_toml

CONFIG_DIR = Path(__file__).with_name("configs")
EXPECTED_DIR = CONFIG_DIR / "expected"

Task = Literal["mfr", "sr16", "theta"]
Analysis = Literal["theta", "dissection", "params"]
Resize = Literal["", "area", "bilinear", "bicubic"]  # torch interpolate modes; bilinear/bicubic antialiased


@dataclass(frozen=True)
class ExperimentSettings:
    """The [experiment] table: what the run is called, how it is scored and checked."""

    name: str = setting(doc="short id, used in run folders")
    title: str = setting("", doc="heading of the report")
    description: str = ""
    table: str = setting("", doc="key of this experiment's rows in the expected-values file")
    expected: str = setting("", doc="expected-values file: a name in bench/configs/expected or a path")
    seed: int = setting(0, doc="seed of everything random that is not a test set (bootstrap, tiny weights)")
    batch_size: int = setting(4, minimum=1)
    metrics: list[str] = setting(["psnr", "ssim"], doc="metrics every method is scored with")
    optional_metrics: list[str] = setting(
        [], doc="metrics used only where their weights are installed (demo: lpips, fid)")
    bootstrap: int = setting(1000, minimum=0, doc="bootstrap resamples for confidence intervals")
    grid_images: int = setting(4, minimum=0, doc="images per test set shown in the report's grids")


@dataclass(frozen=True)
class TestSetSpec:
    """One [[testsets]] entry: a test set built on demand (or an existing folder, `path`)."""

    __test__ = False  # not a pytest test class

    name: str = setting(doc="label in tables and in --set keys")
    task: Task = setting(doc="mfr, sr16 or theta")
    source: str = setting("synthetic", doc="image folder ($VARS expanded) or 'synthetic'")
    preset: str = setting("", doc="degradation preset; empty = the task's default")
    seed: int = 0
    count: int = setting(100, minimum=1)
    workers: int = setting(1, minimum=1)
    path: str = setting("", doc="an already built test set folder to use as is")
    group_by: str = setting("", doc="manifest parameter that splits per-image values (e.g. r)")


@dataclass(frozen=True)
class MethodConfig:
    """One [[methods]] entry: a registered method, its weights and options, where it runs."""

    name: str = setting(doc="row label in tables (matches the expected-values file)")
    method: str = setting(doc="registry name, see `bench methods`")
    weights: str = setting("", doc="checkpoint path ($VARS expanded); empty = the weights registry's cache")
    options: dict[str, Any] = setting({}, doc="keyword options for create_method")
    testsets: list[str] = setting([], doc="test-set names; empty = all")
    analysis: list[Analysis] = setting([], doc="extra analyses: theta, dissection, params")
    restore: bool = setting(True, doc="write restored images and score them")
    optional: bool = setting(False, doc="missing weights -> 'weights not found' note, not a failure")
    note: str = setting("", doc="shown next to the method in the report (e.g. 'random but seeded')")
    resize_input: Resize = setting("", doc="resize LQ to the method's input size ('' = must match)")
    resize_output: Resize = setting("", doc="resize outputs to the GT size ('' = must match)")

    def runs_on(self, testset: str) -> bool:
        return not self.testsets or testset in self.testsets


@dataclass(frozen=True)
class ReportSettings:
    crops: dict[str, Any] = setting({}, doc="name -> [x0, y0, x1, y1] as fractions of the image (aligned faces)")
    dissection_images: int = setting(1, minimum=0)


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment file. There is no inheritance: one file says everything it runs."""

    experiment: ExperimentSettings = setting(doc="the [experiment] table: name, metrics, ...")
    testsets: list[TestSetSpec] = setting([])
    methods: list[MethodConfig] = setting([])
    metric_options: dict[str, dict[str, Any]] = setting({}, doc="metric name -> options for the metrics layer")
    report: ReportSettings = field(default_factory=ReportSettings)


def parse_experiment(data: dict, where: str) -> ExperimentConfig:
    """Check plain data (parsed TOML, or a resolved config) and build the typed experiment."""
    config = from_data(ExperimentConfig, data, where)
    _check_references(config, where)
    return config


def validate(data: dict, where: str) -> dict:
    """The resolved config (every default filled in) as plain data, as saved in run.json."""
    return to_data(parse_experiment(data, where))


def _check_references(cfg: ExperimentConfig, where: str) -> None:
    names = [t.name for t in cfg.testsets]
    for kind, items in (("testsets", cfg.testsets), ("methods", cfg.methods)):
        seen = set()
        for i, item in enumerate(items):
            if item.name in seen:
                raise BenchError(f"{where}: '{kind}[{i}].name' = {item.name!r} is used twice; names must be unique")
            seen.add(item.name)
    if not cfg.methods:
        raise BenchError(f"{where}: no [[methods]]; add at least one method to run")
    if not cfg.testsets:
        raise BenchError(f"{where}: no [[testsets]]; add at least one test set")
    for i, method in enumerate(cfg.methods):
        for name in method.testsets:
            if name not in names:
                raise BenchError(
                    f"{where}: 'methods[{i}].testsets' names test set {name!r}, which is not defined "
                    f"(defined: {', '.join(names)})"
                )
    for name, box in cfg.report.crops.items():
        numbers = isinstance(box, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
        ok = numbers and len(box) == 4 and all(0 <= v <= 1 for v in box)
        if not ok or box[0] >= box[2] or box[1] >= box[3]:
            raise BenchError(f"{where}: 'report.crops.{name}' must be [x0, y0, x1, y1] fractions with x0<x1, y0<y1")


def _expand(value: str, key: str, where: str) -> str:
    def replace(match):
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise BenchError(
                f"{where}: '{key}' uses ${name}, which is not set; export {name}=DIR or override the key "
                f"with --set {key}=DIR"
            )
        return os.environ[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, value)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: `spec` is typed; `config` is the same as plain data (saved in run.json)."""

    spec: ExperimentConfig
    source: str  # the file (or built-in name) it came from
    base_dir: Path  # relative paths in the file are relative to this folder
    cwd: Path = field(default_factory=Path.cwd)  # ... and those given with --set to this one
    set_keys: frozenset[str] = frozenset()  # dotted keys given with --set, items by name (testsets.mfr.source)

    @property
    def config(self) -> dict:
        return to_data(self.spec)

    @property
    def name(self) -> str:
        return self.spec.experiment.name

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()

    def path(self, value: str, key: str) -> Path:
        """An absolute path: $VARS expanded; a relative one is taken from the experiment file's folder,
        or from the current folder when `key` was given on the command line (--set)."""
        path = Path(_expand(value, key, self.source)).expanduser()
        base = self.cwd if key in self.set_keys else self.base_dir
        return Path(os.path.abspath(base / path))  # absolute, symlinks kept as the user wrote them

    def expected_file(self) -> Path | None:
        name = self.spec.experiment.expected
        if not name:
            return None
        builtin = EXPECTED_DIR / f"{name}.toml"
        return builtin if builtin.exists() else self.path(name, "experiment.expected")


def builtin_experiments() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_experiment(name_or_path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read a built-in experiment by name (`ci`, `table1_mfr`, ...) or a TOML file, validate it."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        candidate = CONFIG_DIR / f"{path.name}.toml"
        if not candidate.exists():
            raise BenchError(
                f"no experiment file {str(name_or_path)!r} and no built-in experiment of that name "
                f"(built-in: {', '.join(builtin_experiments())})"
            )
        path = candidate
    data = apply_overrides(read_toml(path, "experiment file"), overrides or [], ExperimentConfig, str(path))
    spec = parse_experiment(data, str(path))
    return Experiment(spec, str(path), path.resolve().parent, set_keys=_set_keys(spec, overrides or []))


def _set_keys(spec: ExperimentConfig, overrides: list[str]) -> frozenset[str]:
    """The dotted keys `--set` gave, with array items named (`testsets.0.source` -> `testsets.mfr.source`)."""
    from bench.config import parse_override

    keys = set()
    for text in overrides:
        parts, _ = parse_override(text)
        if len(parts) == 3 and parts[0] in ("testsets", "methods"):
            names = [item.name for item in getattr(spec, parts[0])]
            chosen = names if parts[1] == "*" else [names[int(parts[1])]] if parts[1].isdigit() else [parts[1]]
            keys |= {f"{parts[0]}.{name}.{parts[2]}" for name in chosen}
        else:
            keys.add(".".join(parts))
    return frozenset(keys)
