"""`bench weights list|fetch|verify|path [NAME]`: the registry of external artefacts and its cache."""

from __future__ import annotations

import argparse

HELP = (
    "list, download, verify or locate the external weight files (cache: $PANINI_BENCH_WEIGHTS or TORCH_HOME)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "fetch", "verify", "path"])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="artefact names (default for list/verify: all)"
    )
    parser.add_argument("--json", action="store_true", help="list: print JSON rows instead of a table")


def run(args) -> int:
    import json

    from bench import weights
    from bench.errors import BenchError

    registry = weights.DEFAULT_REGISTRY
    names = args.names or registry.names()
    for name in names:
        registry.get(name)  # unknown names fail before any work
    if args.action == "list":
        rows = [weights.describe(name) for name in names]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"cache: {weights.weights_dir()}")
        for row in rows:
            state = "present" if row["present"] else "missing"
            size = f"{row['size']:,} B" if row["size"] else "size ?"
            sha = row["sha256"] or (
                f"{row['sha256_prefix']}..." if row["sha256_prefix"] else "sha256 unknown"
            )
            print(f"{row['name']:<20} {state:<8} {row['filename']:<62} {size:>17}  {sha}")
        return 0
    if args.action == "path":
        if not args.names:
            raise BenchError("bench weights path: name one artefact, e.g. `bench weights path inception-fid`")
        for name in names:
            print(weights.expected_path(name))
        return 0
    if args.action == "fetch":
        if not args.names:
            raise BenchError("bench weights fetch: name the artefacts to download (see `bench weights list`)")
        for name in names:
            print(f"{name}: {weights.fetch(name)}")
        return 0
    failures = 0
    for name in names:
        art = registry.get(name)
        path = weights.weights_dir() / art.filename
        if not path.is_file():
            print(f"{name}: missing ({path})")
            continue
        try:
            digest = weights.verify_file(art, path, force=True)
            print(f"{name}: ok sha256 {digest}")
        except BenchError as exc:
            failures += 1
            print(f"{name}: MISMATCH {exc}")
    return 1 if failures else 0
