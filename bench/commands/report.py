"""`bench report RUN_DIR`: the self-contained HTML report plus Markdown and LaTeX tables."""

from __future__ import annotations

import argparse

HELP = "write the HTML report of a run (and tables.md / tables.tex next to it)"
EXAMPLES = """
bench report runs/ci
bench report runs/ci --out ci-report.html
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder made by `bench run`")
    parser.add_argument("--out", help="HTML file (default RUN_DIR/report/index.html)")


def run(args: argparse.Namespace) -> int:
    from bench.reports.html import render_report

    print(render_report(args.run_dir, args.out))
    return 0
