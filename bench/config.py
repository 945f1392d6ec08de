"""The one config engine: TOML -> strict frozen dataclasses, `--set KEY=VALUE` overrides, TOML out.

Experiments (`bench.experiment`) and training configs (`bench.methods.train.config`) declare their
keys as dataclasses; this module reads plain data into them. Field types say what a key accepts
(int, float, bool, str, Literal choices, list[T], dict[str, T], a nested dataclass = a table, a list
of dataclasses = an array of tables); `setting(...)` adds a minimum, a doc line, and the `runtime`
mark for keys that do not change results. An unknown key or a wrong value is a `BenchError` naming
the file and the dotted key, with a "did you mean" hint. Standard library only, so the CLI
validates a file without importing torch.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
import types
import typing
from typing import Any, Literal

import tomllib

from bench.errors import BenchError


def setting(default: Any = dataclasses.MISSING, *, minimum: float | None = None, runtime: bool = False,
            doc: str = "") -> Any:
    """A dataclass field with config metadata; no default = a required key. Lists and dicts are copied."""
    metadata = {"minimum": minimum, "runtime": runtime, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------- reading

def from_data(cls: type, data: Any, where: str, prefix: str = "") -> Any:
    """Build dataclass `cls` from plain data; strict about keys, types, choices and minimums."""
    if not isinstance(data, dict):
        raise BenchError(f"{where}: key '{prefix}' must be a table, got {data!r} ({type(data).__name__})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise unknown_key(where, _join(prefix, key), fields)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        dotted = _join(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                doc = f.metadata.get("doc")
                raise BenchError(f"{where}: missing required key '{dotted}' ({doc or _type_name(hints[name])})")
            continue
        value = data[name]
        if dataclasses.is_dataclass(hints[name]) and f.default_factory is not dataclasses.MISSING:
            if not isinstance(value, dict):
                raise BenchError(f"{where}: key '{dotted}' must be a table ([{dotted}]), got {type(value).__name__}")
            value = {**to_data(f.default_factory()), **value}  # a section merges over its default section
        values[name] = _convert(value, hints[name], dotted, where)
        minimum = f.metadata.get("minimum")
        if minimum is not None and values[name] < minimum:
            raise BenchError(f"{where}: key '{dotted}' is {values[name]}; it must be >= {minimum}")
    return cls(**values)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def unknown_key(where: str, dotted: str, known) -> BenchError:
    """'unknown key' with the closest known name (known: the names next to the last part of `dotted`)."""
    parent, _, key = dotted.rpartition(".")
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean '{_join(parent, close[0])}'?" if close else ""
    return BenchError(f"{where}: unknown key '{dotted}'{hint} (known keys here: {', '.join(sorted(known))})")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        return "a list of tables" if dataclasses.is_dataclass(item) else f"a list of {_type_name(item)}"
    if origin is dict or tp is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value, where, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) or value not in choices:
            raise BenchError(f"{where}: key '{key}' is {value!r}; choose one of {', '.join(map(repr, choices))}")
        return value
    ok = {list: isinstance(value, list), dict: isinstance(value, dict), bool: isinstance(value, bool),
          str: isinstance(value, str), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, int | float) and not isinstance(value, bool)}
    kind = origin or tp
    if kind not in ok:
        if origin in (typing.Union, types.UnionType):
            raise TypeError(f"unions are not supported in configs ({key})")
        raise TypeError(f"unsupported config type {tp} for {key}")
    if not ok[kind]:
        raise BenchError(f"{where}: key '{key}' must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _convert(v, item, f"{key}.{k}", where) for k, v in value.items()}
    return float(value) if tp is float else copy.deepcopy(value)


def to_data(config: Any, runtime: bool = True) -> Any:
    """A config as plain dicts and lists (what TOML and run.json hold); runtime=False drops `runtime` keys."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_data(getattr(config, f.name), runtime) for f in dataclasses.fields(config)
                if runtime or not f.metadata.get("runtime")}
    if isinstance(config, list):
        return [to_data(v, runtime) for v in config]
    if isinstance(config, dict):
        return {k: to_data(v, runtime) for k, v in config.items()}
    return config


# ----------------------------------------------------------------------------- --set KEY=VALUE

def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value`: the dotted key's parts and the value read as TOML (a bare word stays a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise BenchError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. --set section.key=10")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str], schema: type, where: str) -> dict:
    """A copy of `data` with `--set` values applied; `schema` (the dataclass) says what a missing table is.

    Array items are picked by name, by index or all at once with `*`: `testsets.mfr.count=10`,
    `testsets.0.count=10`, `testsets.*.preset=sr16`. Leaf keys are checked when the result is built.
    """
    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        _assign(data, parts, 0, value, schema, text, where)
    return data


def _assign(node: Any, parts: list[str], depth: int, value: Any, tp: Any, text: str, where: str) -> None:
    part, label = parts[depth], ".".join(parts[: depth + 1])
    if isinstance(node, list):
        if depth == len(parts) - 1:
            raise BenchError(f"--set {text!r}: pick an item of '{'.'.join(parts[:depth])}' by name, index or * first")
        item_type = typing.get_args(tp)[0] if typing.get_origin(tp) is list else Any
        for item in _pick(node, part, label, text, where):
            _assign(item, parts, depth + 1, value, item_type, text, where)
        return
    if not isinstance(node, dict):
        raise BenchError(f"--set {text!r}: '{'.'.join(parts[:depth])}' is a value, not a table")
    if depth == len(parts) - 1:
        node[part] = value
        return
    child = _child_type(tp, part, label, text)
    if part not in node:
        node[part] = [] if typing.get_origin(child) is list else {}
    _assign(node[part], parts, depth + 1, value, child, text, where)


def _child_type(tp: Any, part: str, label: str, text: str) -> Any:
    if dataclasses.is_dataclass(tp):
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if part not in fields:
            raise unknown_key(f"--set {text!r}", label, fields)
        return typing.get_type_hints(tp)[part]
    if typing.get_origin(tp) is dict:
        return typing.get_args(tp)[1]
    return Any


def _pick(items: list, part: str, label: str, text: str, where: str) -> list:
    if part == "*":
        return items
    if part.isdigit():
        if int(part) >= len(items):
            raise BenchError(f"--set {text!r}: '{label}' is out of range ({len(items)} items in {where})")
        return [items[int(part)]]
    named = [e for e in items if isinstance(e, dict) and e.get("name") == part]
    if not named:
        names = [str(e.get("name")) for e in items if isinstance(e, dict)]
        raise BenchError(f"--set {text!r}: no item named {part!r} for '{label}' (names: {', '.join(names)}; "
                         "or pick by index, or * for all)")
    return named


# ----------------------------------------------------------------------------- writing

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise BenchError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: Any, header: str = "") -> str:
    """A dict or config dataclass as TOML (top-level values, [tables], [[arrays of tables]]) that tomllib reads back."""
    data = to_data(data)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list)) or
               (isinstance(v, list) and not any(isinstance(i, dict) for i in v))}
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        if key in scalars:
            continue
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        else:
            for item in value:
                lines += ["", f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines).lstrip("\n") + "\n"
