"""`bench weights list|fetch|verify|path [NAME]`: the registry of external artefacts and its cache."""

from __future__ import annotations

import argparse

HELP = (
    "list, download, verify or locate the external weight files (cache: $PANINI_BENCH_WEIGHTS or TORCH_HOME)"
)
ACTIONS = {
    "list": ("every artefact: name, state (present / missing / wrong size), file, size, SHA-256, URL",
             "bench weights list\nbench weights list inception-fid lpips-alex --json\n"),
    "fetch": ("download artefacts into the cache (resumable, hash-checked, atomic)",
              "bench weights fetch inception-fid\nbench weights fetch lpips-alex inception-fid\n"),
    "verify": ("re-hash present files; a file with no published hash is reported as unverified",
               "bench weights verify\nbench weights verify gpen-bfr-512\n"),
    "path": ("print where a file belongs (to place it by hand on an offline machine)",
             "bench weights path gpen-bfr-512\nbench weights path inception-fid lpips-alex\n"),
}
EXAMPLES = "".join(examples.splitlines(keepends=True)[0] for _, examples in ACTIONS.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.cli import add_action_parser

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, (text, examples) in ACTIONS.items():
        action_parser = add_action_parser(sub, action, text, examples)
        required = action in ("fetch", "path")
        action_parser.add_argument("names", nargs="+" if required else "*", metavar="NAME",
                                   help="artefact names, see `bench weights list`" + ("" if required else
                                                                                       " (default: all)"))
        if action == "list":
            action_parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")


def _state(row: dict) -> str:
    if not row["present"]:
        return "missing"
    return "wrong size" if row["size"] and row["file_size"] != row["size"] else "present"


def _describe(weights, name: str) -> dict:
    """The registry row plus the cached file's size and its state (present / missing / wrong size)."""
    from pathlib import Path

    row = weights.describe(name)
    row["file_size"] = Path(row["path"]).stat().st_size if row["present"] else None
    row["state"] = _state(row)
    return row


def _list(weights, names: list[str], as_json: bool) -> int:
    import json

    rows = [_describe(weights, name) for name in names]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"cache: {weights.weights_dir()}")
    for row in rows:
        size = f"{row['size']:,} B" if row["size"] else "size ?"
        if row["state"] == "wrong size":
            size = f"{row['file_size']:,} B (expected {size})"
        sha = row["sha256"] or (f"{row['sha256_prefix']}..." if row["sha256_prefix"] else "sha256 unknown")
        print(f"{row['name']:<20} {row['state']:<10} {row['filename']:<62} {size:>17}  {sha}  {row['url']}")
    return 0


def _verify(weights, registry, names: list[str]) -> int:
    from bench.errors import BenchError

    failures = 0
    for name in names:
        art = registry.get(name)
        path = weights.weights_dir() / art.filename
        if not path.is_file():
            print(f"{name}: missing ({path})")
            continue
        try:
            digest = weights.verify_file(art, path, force=True)
        except BenchError as exc:
            failures += 1
            print(f"{name}: MISMATCH {exc}")
            continue
        if art.sha256:
            print(f"{name}: ok sha256 {digest}")
        elif art.sha256_prefix:
            print(f"{name}: ok sha256 {digest} (the registry knows only its prefix {art.sha256_prefix})")
        else:
            print(f"{name}: unverified (no known hash) sha256 {digest}; compare it with the publisher's if they "
                  "give one")
    return 1 if failures else 0


def run(args) -> int:
    from bench import weights

    registry = weights.DEFAULT_REGISTRY
    names = args.names or registry.names()
    for name in names:
        registry.get(name)  # unknown names fail before any work
    if args.action == "list":
        return _list(weights, names, args.json)
    if args.action == "path":
        for name in names:
            print(weights.expected_path(name))
        return 0
    if args.action == "fetch":
        for name in names:
            print(f"{name}: {weights.fetch(name)}")
        return 0
    return _verify(weights, registry, names)
