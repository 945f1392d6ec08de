"""The `bench` command line: one sub-command per module in `bench/commands/`.

Each command module defines `HELP` (one line), `EXAMPLES` (working command lines shown at the end of
its `--help`), `add_arguments(parser)` and `run(args) -> int`. Command modules import only the
standard library at module level, so `bench --help` and argument errors are instant; the heavy work
(torch, metric packages) is imported inside `run`.

`main` is the one place that turns failures into exit statuses (see `EXIT_STATUSES`): a user-fixable
problem (`BenchError`, or any OSError such as a full disk or a read-only folder) is one line naming
the path and the cause, never a traceback unless `--debug` or `BENCH_DEBUG=1`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback

from bench import __version__
from bench.errors import BenchError, describe_os_error

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

EXIT_STATUSES = """exit status:
  0    everything asked for was done
  1    some method, metric or check failed (results and report still written for the rest)
  2    usage or input error: one line names the file, key or value and what to do
  130  interrupted (Ctrl-C); the message says how to continue
  141  the reader of the output went away (e.g. `| head`); nothing else went wrong"""

def _available_commands():
    for name, module_name in COMMANDS.items():
        try:
            yield name, importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise


def examples_epilog(examples: str) -> str:
    """The `examples:` block that ends a command's --help (an indented command per line)."""
    lines = [line.strip() for line in examples.strip().splitlines() if line.strip()]
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_debug_option(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    """`--debug` before or after the command name (SUPPRESS: a sub-parser never resets the top one)."""
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error (also BENCH_DEBUG=1)")


def add_action_parser(sub, name: str, help: str, examples: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command's ACTION parser (`bench testset build`, `bench weights fetch`) with its own examples."""
    parser = sub.add_parser(name, help=help, description=kwargs.pop("description", help),
                            epilog=examples_epilog(examples), formatter_class=argparse.RawDescriptionHelpFormatter,
                            **kwargs)
    add_debug_option(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Reproducibility benchmark suite for GAN-prior face restoration (Panini-Net and baselines).",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"panini-bench {__version__}")
    add_debug_option(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands():
        command_parser = sub.add_parser(
            name, help=module.HELP, description=module.HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=examples_epilog(module.EXAMPLES) if getattr(module, "EXAMPLES", "") else None,
        )
        add_debug_option(command_parser)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def _resume_hint(args: argparse.Namespace) -> str:
    if hasattr(args, "resume"):
        return "rerun the same command with --resume to continue where it stopped"
    return "rerun the same command to continue; finished work is reused"


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("BENCH_DEBUG", "") not in ("", "0")
    prefix = f"bench {args.command}: "
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print(f"{prefix}interrupted; {_resume_hint(args)}", file=sys.stderr)
        return 130
    except (BenchError, OSError) as exc:
        if debug:
            traceback.print_exc()
        text = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        print(f"{prefix}error: {text}", file=sys.stderr)
        return 2


def console(argv: list[str] | None = None) -> int:
    """The `bench` command: `main()`, then `gc.freeze()`. The interpreter's collections while it tears
    down torch's modules at exit walk every object (0.4 s of a 5 s `bench evaluate`, measured); frozen
    objects are skipped, and nothing is left to collect then. atexit handlers and flushes still run."""
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console())
