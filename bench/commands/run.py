"""`bench run EXPERIMENT`: test sets -> methods -> outputs -> metrics -> results (resumable)."""

from __future__ import annotations

import argparse

HELP = "run an experiment (a TOML file or a built-in name: table1_mfr, ..., demo, ci)"
EXAMPLES = """
bench run ci --out runs/ci
bench run demo --out runs/demo --set testsets.synthetic-mfr.count=4 --report
bench run table1_mfr --device cuda --set testsets.celeba-hq-mfr.source=/data/CelebA-HQ --resume
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file, or a built-in name (see bench/configs)")
    parser.add_argument("--out", help="run folder (default runs/<experiment name>)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu); under torchrun each "
                        "rank uses cuda:LOCAL_RANK")
    parser.add_argument("--resume", action="store_true", help="continue a run in --out; finished work is reused")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --out (only a folder with "
                        "run.json is ever emptied; its testsets/ are kept)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set experiment.batch_size=2 --set testsets.synthetic-mfr.count=10 "
                        "(test-set and method names as in the experiment file)")
    parser.add_argument("--testsets", metavar="DIR", help="where test sets are built and reused, shared by "
                        "runs (default $PANINI_BENCH_TESTSETS, else RUN_DIR/testsets)")
    parser.add_argument("--report", action="store_true", help="also write the HTML report at the end")
    parser.add_argument("--check", action="store_true", help="validate the experiment file and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved experiment (TOML) and exit")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.experiment import load_experiment

    exp = load_experiment(args.experiment, args.overrides)
    if args.print_config:
        from bench.config import to_toml

        print(to_toml(exp.spec), end="")
        return 0
    if args.check:
        print(f"{exp.source}: valid ({len(exp.spec.testsets)} test sets, {len(exp.spec.methods)} methods)")
        return 0
    from bench.runner import Runner

    out = Path(args.out or Path("runs") / exp.name)
    import os

    testsets = args.testsets or os.environ.get("PANINI_BENCH_TESTSETS")
    runner = Runner(exp, out, device=args.device, resume=args.resume, overwrite=args.overwrite,
                    testset_root=testsets)
    runner.run()
    if not runner.dist.main:
        return 0
    from bench.io import read_json

    info = read_json(out / "run.json")
    print(f"run {info['status']}: {out / 'results.jsonl'}")
    for failure in info["failures"]:
        where = " ".join(part for part in (failure["method"], failure["testset"]) if part)
        print(f"  failed: {where + ' ' if where else ''}({failure['stage']}): {failure['error']}")
    if args.report:
        from bench.reports.html import render_report

        print(f"report: {render_report(out)}")
    return 1 if info["failures"] else 0
