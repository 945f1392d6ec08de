"""Experiment files: a strict TOML schema, `--set key=value` overrides, and the resolved config.

An experiment names its test sets (task, preset, seed, count, source), its methods (registry name,
weights, options, analyses), its metrics and the expected-values file it is checked against. Every
key is declared in `SCHEMA` below; an unknown key or a value of the wrong type is a `BenchError`
naming the file and the dotted key. There is no inheritance: one file says everything it runs.
Standard library only, so the CLI can validate a file without importing torch.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from bench.errors import BenchError

CONFIG_DIR = Path(__file__).with_name("configs")
EXPECTED_DIR = CONFIG_DIR / "expected"

TASKS = ("mfr", "sr16", "theta")
ANALYSES = ("theta", "dissection", "params")
RESIZE = ("", "area", "bilinear", "bicubic")  # torch interpolate modes; bilinear/bicubic antialiased


@dataclass(frozen=True)
class Field:
    """One key: its type, default (None = required unless `optional`) and allowed values."""

    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    item: type | None = None  # element type of a list
    minimum: int | float | None = None
    doc: str = ""


SECTION_EXPERIMENT = {
    "name": Field(str, required=True, doc="short id, used in run folders"),
    "title": Field(str, "", doc="heading of the report"),
    "description": Field(str, ""),
    "table": Field(str, "", doc="key of this experiment's rows in the expected-values file"),
    "expected": Field(str, "", doc="expected-values file: a name in bench/configs/expected or a path"),
    "seed": Field(int, 0, doc="seed of everything random that is not a test set (bootstrap, tiny weights)"),
    "batch_size": Field(int, 4, minimum=1),
    "metrics": Field(list, ["psnr", "ssim"], item=str, doc="metrics every method is scored with"),
    "optional_metrics": Field(
        list, [], item=str, doc="metrics used only where their weights are installed (demo: lpips, fid)"
    ),
    "bootstrap": Field(int, 1000, minimum=0, doc="bootstrap resamples for confidence intervals"),
    "grid_images": Field(int, 4, minimum=0, doc="images per test set shown in the report's grids"),
}

SECTION_TESTSET = {
    "name": Field(str, required=True),
    "task": Field(str, required=True, choices=TASKS),
    "source": Field(str, "synthetic", doc="image folder ($VARS expanded) or 'synthetic'"),
    "preset": Field(str, "", doc="degradation preset; empty = the task's default"),
    "seed": Field(int, 0),
    "count": Field(int, 100, minimum=1),
    "workers": Field(int, 1, minimum=1),
    "path": Field(str, "", doc="an already built test set folder to use as is"),
    "group_by": Field(str, "", doc="manifest parameter that splits per-image values (e.g. r)"),
}

SECTION_METHOD = {
    "name": Field(str, required=True, doc="row label in tables (matches the expected-values file)"),
    "method": Field(str, required=True, doc="registry name, see `bench methods`"),
    "weights": Field(str, "", doc="checkpoint path ($VARS expanded); empty = the weights registry's cache"),
    "options": Field(dict, {}, doc="keyword options for create_method"),
    "testsets": Field(list, [], item=str, doc="test-set names; empty = all"),
    "analysis": Field(list, [], item=str, doc=f"extra analyses: {', '.join(ANALYSES)}"),
    "restore": Field(bool, True, doc="write restored images and score them"),
    "optional": Field(bool, False, doc="missing weights -> 'weights not found' note, not a failure"),
    "note": Field(str, "", doc="shown next to the method in the report (e.g. 'random but seeded')"),
    "resize_input": Field(str, "", choices=RESIZE, doc="resize LQ to the method's input size ('' = must match)"),
    "resize_output": Field(str, "", choices=RESIZE, doc="resize outputs to the GT size ('' = must match)"),
}

SECTION_REPORT = {
    "crops": Field(dict, {}, doc="name -> [x0, y0, x1, y1] as fractions of the image (aligned faces)"),
    "dissection_images": Field(int, 1, minimum=0),
}

SCHEMA = {
    "experiment": (SECTION_EXPERIMENT, "table"),
    "testsets": (SECTION_TESTSET, "array"),
    "methods": (SECTION_METHOD, "array"),
    "metric_options": (None, "table"),  # metric name -> options table, passed to the metrics layer
    "report": (SECTION_REPORT, "table"),
}

DEFAULT_CROPS = {"eyes": [0.22, 0.36, 0.78, 0.52], "mouth": [0.32, 0.64, 0.68, 0.80]}


def _type_name(kind) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # TOML true is not an integer
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, kinds)


def _unknown(where: str, key: str, known) -> BenchError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return BenchError(f"{where}: unknown key '{key}'{hint} (known keys: {', '.join(sorted(known))})")


def _check_section(fields: dict[str, Field], data: Any, path: str, where: str) -> dict:
    if not isinstance(data, dict):
        raise BenchError(f"{where}: '{path}' must be a table, got {type(data).__name__}")
    for key in data:
        if key not in fields:
            raise _unknown(where, f"{path}.{key}", {f"{path}.{k}" for k in fields})
    out = {}
    for key, field in fields.items():
        dotted = f"{path}.{key}"
        if key not in data:
            if field.required:
                raise BenchError(f"{where}: missing required key '{dotted}' ({field.doc or _type_name(field.kind)})")
            out[key] = copy.deepcopy(field.default)
            continue
        value = data[key]
        if not _is(value, field.kind):
            raise BenchError(
                f"{where}: key '{dotted}' must be {_type_name(field.kind)}, got {value!r} ({type(value).__name__})"
            )
        if field.item is not None:
            for i, element in enumerate(value):
                if not _is(element, field.item):
                    raise BenchError(
                        f"{where}: key '{dotted}[{i}]' must be {_type_name(field.item)}, got {element!r}"
                    )
        if field.choices and value not in field.choices:
            raise BenchError(f"{where}: key '{dotted}' is {value!r}; choose one of {', '.join(field.choices)}")
        if field.minimum is not None and value < field.minimum:
            raise BenchError(f"{where}: key '{dotted}' is {value}; it must be >= {field.minimum}")
        out[key] = value
    return out


def validate(data: dict, where: str) -> dict:
    """Check `data` against SCHEMA; return it with every default filled in (the resolved config)."""
    for key in data:
        if key not in SCHEMA:
            raise _unknown(where, key, SCHEMA)
    if "experiment" not in data:
        raise BenchError(f"{where}: missing the [experiment] table (name, metrics, ...)")
    resolved: dict[str, Any] = {}
    for key, (fields, shape) in SCHEMA.items():
        value = data.get(key, [] if shape == "array" else {})
        if shape == "array":
            if not isinstance(value, list):
                raise BenchError(f"{where}: '{key}' must be an array of tables ([[{key}]]), got {type(value).__name__}")
            resolved[key] = [_check_section(fields, item, f"{key}[{i}]", where) for i, item in enumerate(value)]
        elif fields is None:
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise BenchError(f"{where}: '{key}' must be a table of tables ([{key}.NAME] with options)")
            resolved[key] = copy.deepcopy(value)
        else:
            resolved[key] = _check_section(fields, value, key, where)
    _check_references(resolved, where)
    return resolved


def _check_references(cfg: dict, where: str) -> None:
    names = [t["name"] for t in cfg["testsets"]]
    for kind in ("testsets", "methods"):
        seen = set()
        for i, item in enumerate(cfg[kind]):
            if item["name"] in seen:
                raise BenchError(f"{where}: '{kind}[{i}].name' = {item['name']!r} is used twice; names must be unique")
            seen.add(item["name"])
    if not cfg["methods"]:
        raise BenchError(f"{where}: no [[methods]]; add at least one method to run")
    if not cfg["testsets"]:
        raise BenchError(f"{where}: no [[testsets]]; add at least one test set")
    for i, method in enumerate(cfg["methods"]):
        for name in method["testsets"]:
            if name not in names:
                raise BenchError(
                    f"{where}: 'methods[{i}].testsets' names test set {name!r}, which is not defined "
                    f"(defined: {', '.join(names)})"
                )
        for analysis in method["analysis"]:
            if analysis not in ANALYSES:
                raise BenchError(
                    f"{where}: 'methods[{i}].analysis' has {analysis!r}; choose from {', '.join(ANALYSES)}"
                )
    for name, box in cfg["report"]["crops"].items():
        ok = isinstance(box, list) and len(box) == 4 and all(_is(v, float) and 0 <= v <= 1 for v in box)
        if not ok or box[0] >= box[2] or box[1] >= box[3]:
            raise BenchError(f"{where}: 'report.crops.{name}' must be [x0, y0, x1, y1] fractions with x0<x1, y0<y1")


def _parse_value(text: str) -> Any:
    """A `--set` value is read as TOML (10, 1.5, true, "a", [..], {..}); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict, overrides: list[str], where: str) -> dict:
    """Apply `key=value` strings. Keys are dotted; array items are picked by index or by name.

    `experiment.batch_size=2`, `testsets.mfr.count=10` (or `testsets.0.count=10`),
    `methods.Panini-Net.weights=ckpt.pth`.
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BenchError(f"--set {item!r}: expected KEY=VALUE, e.g. --set experiment.batch_size=2")
        parts = key.split(".")
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            label = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                node = _pick(node, part, label, where)
            elif isinstance(node, dict):
                if part not in node:
                    if depth == 0 and part not in SCHEMA:
                        raise _unknown(f"--set {item!r}", part, SCHEMA)
                    node[part] = [] if depth == 0 and SCHEMA[part][1] == "array" else {}
                node = node[part]
            else:
                raise BenchError(f"--set {item!r}: '{label}' is a value, not a table")
        if isinstance(node, list):
            raise BenchError(f"--set {item!r}: pick an item of '{'.'.join(parts[:-1])}' by name or index first")
        node[parts[-1]] = _parse_value(raw.strip())
    return data


def _pick(items: list, part: str, label: str, where: str) -> dict:
    if part.isdigit():
        index = int(part)
        if index >= len(items):
            raise BenchError(f"--set: '{label}' is out of range ({len(items)} items in {where})")
        return items[index]
    for element in items:
        if isinstance(element, dict) and element.get("name") == part:
            return element
    names = [e.get("name") for e in items if isinstance(e, dict)]
    raise BenchError(f"--set: no item named {part!r} for '{label}' (names: {', '.join(map(str, names))})")


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


@dataclass
class Experiment:
    """A validated experiment: `config` is the resolved dict saved in run.json."""

    config: dict
    source: str  # the file (or built-in name) it came from
    base_dir: Path  # relative paths in the file are relative to this folder

    @property
    def name(self) -> str:
        return self.config["experiment"]["name"]

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()

    def path(self, value: str, key: str) -> Path:
        """A path from the file: $VARS expanded, relative to the experiment file's folder."""
        path = Path(_expand(value, key, self.source)).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def methods_for(self, testset_name: str) -> list[dict]:
        return [m for m in self.config["methods"] if not m["testsets"] or testset_name in m["testsets"]]

    def expected_file(self) -> Path | None:
        name = self.config["experiment"]["expected"]
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
    if not path.is_file():
        raise BenchError(f"experiment file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML: {exc}") from None
    data = apply_overrides(data, overrides or [], str(path))
    return Experiment(validate(data, str(path)), str(path), path.resolve().parent)


def experiment_from_config(config: dict, base_dir: str | Path, source: str = "run.json") -> Experiment:
    """Rebuild an Experiment from a resolved config (as saved in run.json)."""
    return Experiment(validate(config, source), source, Path(base_dir))
