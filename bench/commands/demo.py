"""`bench demo`: the embedded default, offline on a CPU, ending with the HTML report."""

from __future__ import annotations

import argparse

HELP = "offline CPU demo: synthetic faces -> test sets -> bicubic, tiny Panini-Net, installed baselines -> report"
EXAMPLES = """
bench demo
bench demo --out demo-output --count 4 --fresh
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="output folder (default ./demo-output)")
    parser.add_argument("--count", type=int, help="synthetic faces per MFR / SR test set (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--fresh", action="store_true", help="start over instead of reusing finished work")


def run(args: argparse.Namespace) -> int:
    import shutil
    import time
    from pathlib import Path

    from bench.experiment import load_experiment
    from bench.reports.html import render_report
    from bench.runner import Runner

    start = time.perf_counter()
    overrides = []
    if args.count:
        overrides += [f"testsets.synthetic-mfr.count={args.count}", f"testsets.synthetic-sr16.count={args.count}"]
    exp = load_experiment("demo", overrides)
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    same = False
    if (out / "run.json").exists():
        from bench.io import read_json

        same = read_json(out / "run.json").get("config_hash") == exp.config_hash()
        if not same:
            shutil.rmtree(out / "scores", ignore_errors=True)
            (out / "run.json").unlink()
    Runner(exp, out, device=args.device, resume=same).run()
    report = render_report(out)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    print(f"report: {report.resolve()}")
    return 0
