"""Issue 15 item 6: help that teaches, and examples that work.

Every sub-command's --help ends with examples and every option has a help text. Every example in
README.md and in the --help texts is parsed by the real parser and its experiment or training config
is loaded with its --set values; those that need no weights, external data or a GPU are run, in a
sandbox, in the order a new user would (build a set, run, evaluate, report, compare, ...).
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from test_strict_json import strict_load, strict_load_file

from bench.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"

# An example mentioning one of these needs what a CPU-only, offline test does not have.
NEEDS = {
    "/data/": "an external image folder",
    "cuda": "a GPU",
    "torchrun": "several processes and a GPU",
    "weights fetch": "the network",
    "my-results": "the user's own results",
    ",lpips": "LPIPS and Inception weights",
    "table1_mfr": "CelebA-HQ and official weights",
    "table2_sr16": "CelebA-HQ and official weights",
    "-official": "official weights",
    "-paper": "official weights",
}
# Run elsewhere in the suite at full cost (tests/test_runner.py, tests/test_fit.py): parsed here only.
ALSO_CHECKED_ELSEWHERE = ("bench demo", "bench run demo", "bench testset fit")
# Commands that must run before others use their output.
ORDER = ("testset build", "testset verify", "run", "evaluate", "report", "compare runs/ci --write",
         "compare", "train", "weights", "methods")


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("bench",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def help_examples() -> list[str]:
    lines = []
    for _, parser in _walk(build_parser()):
        epilog = parser.epilog or ""
        if "examples:" in epilog:
            lines += [line.strip() for line in epilog.split("examples:", 1)[1].splitlines() if line.strip()]
    return lines


def readme_examples() -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [line.strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()
            if re.match(r"\s*(bench|torchrun) ", line)]


def argv_of(example: str) -> list[str]:
    argv = shlex.split(example, comments=True)
    argv[0] = Path(argv[0]).name  # .venv/bin/bench
    if argv[0] == "torchrun":
        argv = argv[argv.index("bench"):]
    assert argv[0] == "bench", example
    return argv[1:]


ALL = sorted({" ".join(argv_of(e)): e for e in help_examples() + readme_examples()}.values())


def runnable(example: str) -> bool:
    return not any(word in example for word in NEEDS) and not example.startswith(ALSO_CHECKED_ELSEWHERE)


def test_every_subcommand_help_has_examples_and_every_option_a_help_text():
    for path, parser in _walk(build_parser()):
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if len(path) > 1:
            assert "examples:" in (parser.epilog or ""), f"{' '.join(path)} --help has no examples"
        if leaf:
            for action in parser._actions:
                if not isinstance(action, argparse._HelpAction):
                    assert action.help, f"{' '.join(path)} {action.option_strings or action.dest} has no help"


def test_weights_actions_have_their_own_help(capsys):
    for action in ("list", "fetch", "verify", "path"):
        with pytest.raises(SystemExit):
            main(["weights", action, "--help"])
        text = capsys.readouterr().out
        assert f"usage: bench weights {action}" in text and f"bench weights {action}" in text.split("examples:")[1]


@pytest.mark.parametrize("example", ALL)
def test_every_example_parses_and_its_config_loads(example):
    args = build_parser().parse_args(argv_of(example))
    if args.command == "run":
        from bench.experiment import load_experiment

        load_experiment(args.experiment, args.overrides)
    elif args.command == "train":
        from bench.methods.train.config import load_config

        load_config(args.task, args.config, args.overrides)


def _rank(example: str) -> int:
    command = " ".join(argv_of(example))
    return next(i for i, prefix in enumerate(ORDER) if command.startswith(prefix) or prefix == ORDER[-1])


@pytest.mark.slow
def test_examples_that_need_no_weights_run(tmp_path, monkeypatch, capsys):
    """About a minute on an idle 2-core machine: one CI run, one tiny training, the rest is quick."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    monkeypatch.delenv("PANINI_BENCH_TESTSETS", raising=False)
    monkeypatch.setenv("PANINI_BENCH_CACHE", str(tmp_path / "cache"))
    examples = sorted((e for e in ALL if runnable(e)), key=_rank)
    assert len(examples) >= 15
    for example in examples:
        argv = argv_of(example)
        assert main(argv) == 0, f"`{example}` failed: {capsys.readouterr().err[-2000:]}"
        out = capsys.readouterr().out
        if "--json" in argv and "--json" == argv[-1]:
            strict_load(out)
    files = [p for p in tmp_path.rglob("*") if p.suffix in (".json", ".jsonl") and "cache" not in p.parts]
    assert any(p.name == "run.json" for p in files) and any(p.name == "testset.json" for p in files)
    for path in files:  # every JSON the CLI wrote is strict
        strict_load_file(path)
