"""`bench methods`: every registered method (built-in and plugins) with task, sizes, weights, licence."""

from __future__ import annotations

import json

from bench.errors import BenchError

HELP = "list registered methods (built-in and plugins): task, input/output size, weights file, licence"
EXAMPLES = """
bench methods
bench methods --json
"""


SIZES_NOTE = (
    "in/out: sizes with the released weights. A Panini-Net file from `bench train panini` (RUN/generator.pth or "
    "RUN/checkpoints/iter_*.pt) brings its own configuration: the method then runs at that file's sizes."
)


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _weights_file(name: str) -> str:
    """Where the weights registry expects artefact `name` (marked when absent), or the bare name for a
    plugin's artefact the registry does not know (the listing never fails because of one)."""
    from bench.weights import expected_path

    try:
        path = expected_path(name)
    except BenchError:
        return name
    return str(path) if path.is_file() else f"{path} (missing: bench weights fetch {name})"


def _size(value) -> str:
    return "any" if value is None else str(value)


def _rows(entries) -> list[dict]:
    return [
        {
            "name": e.spec.name,
            "task": e.spec.task,
            "in_size": e.spec.in_size,
            "out_size": e.spec.out_size,
            "weights": [_weights_file(w) for w in e.spec.weights],
            "licence": e.spec.licence,
            "native_input": e.spec.native_input,
            "description": e.spec.description,
            "factory": e.factory,
        }
        for e in entries
    ]


def run(args) -> int:
    from bench.methods.registry import list_methods

    entries, broken = list_methods(include_broken=True)
    rows = _rows(entries)
    broken_rows = [{"name": b.name, "entry_point": b.value, "error": b.error} for b in broken]
    if args.json:
        print(json.dumps({"methods": rows, "broken_plugins": broken_rows, "sizes_note": SIZES_NOTE}, indent=2))
        return 0
    header = ("name", "task", "in", "out", "weights", "licence")
    table = [
        (
            r["name"],
            r["task"],
            _size(r["in_size"]),
            _size(r["out_size"]),
            ", ".join(r["weights"]) or "-",
            r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header) - 1)]
    for row in [header, *table]:
        print(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
    print(SIZES_NOTE)
    for b in broken_rows:
        print(f"BROKEN plugin {b['name']} ({b['entry_point']}): {b['error']}")
    return 0
