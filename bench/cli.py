"""The `bench` command line: one sub-command per module in `bench/commands/`.

Each command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Command modules import only the standard library at module level, so `bench --help` and argument
errors are instant; the heavy work (torch, metric packages) is imported inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import __version__
from bench.errors import BenchError

# name -> module; order is the order shown by `bench --help`.
COMMANDS = {
    "testset": "bench.commands.testset",
    "evaluate": "bench.commands.evaluate",
    "run": "bench.commands.run",
    "report": "bench.commands.report",
    "compare": "bench.commands.compare",
    "train": "bench.commands.train",
    "weights": "bench.commands.weights",
    "methods": "bench.commands.methods",
    "demo": "bench.commands.demo",
}


def _available_commands():
    for name, module_name in COMMANDS.items():
        try:
            yield name, importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Reproducibility benchmark suite for GAN-prior face restoration (Panini-Net and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"panini-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands():
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except BenchError as exc:
        print(f"bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bench {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
