"""`bench demo`: the embedded default, offline on a CPU (grows with the runner and report)."""

from __future__ import annotations

import argparse

HELP = "offline CPU demo: build synthetic MFR and 16x SR test sets and say where they are"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="output folder (default ./demo-output)")
    parser.add_argument("--count", type=int, default=8, help="synthetic faces per test set (default 8)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.datasets import testset

    out = Path(args.out)
    for task in ("mfr", "sr16"):
        info = testset.build(task, "synthetic", out / "testsets" / task, count=args.count, workers=2)
        print(f"{task}: {info['n_images']} images in {out / 'testsets' / task} (id {info['testset_id'][:16]})")
    return 0
