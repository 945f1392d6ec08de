"""`bench report RUN_DIR`: the self-contained HTML report plus Markdown and LaTeX tables.

`--reference-lq DIR --reference-gt DIR` adds the input difficulty of a reference folder pair (e.g.
the paper's official example inputs): the PSNR of its LQ images upsampled bicubically (PIL) to the
GT size, beside the run's own bicubic rows, so a reconstructed degradation's severity can be judged.
"""

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
    parser.add_argument("--reference-lq", metavar="DIR", help="reference LQ folder whose input PSNR is shown "
                        "beside the run's (needs --reference-gt)")
    parser.add_argument("--reference-gt", metavar="DIR", help="GT folder of --reference-lq (files matched by stem)")


def reference_difficulty(lq_dir: str, gt_dir: str) -> dict:
    """{"source", "psnr", "ci", "n"}: PSNR of the LQ folder, PIL-bicubic upsampled to its GT, against the GT."""
    from bench.metrics.evaluate import evaluate_folders

    rows, _ = evaluate_folders(gt_dir, lq_dir, metrics=("psnr",), resize_policy="bicubic", progress=False)
    row = rows[0]
    return {"source": f"reference {lq_dir} (PIL bicubic to the GT size)", "psnr": row["value"],
            "ci": (row.get("ci_low"), row.get("ci_high")), "n": row.get("n")}


def run(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.reports.html import render_report

    if bool(args.reference_lq) != bool(args.reference_gt):
        raise BenchError("--reference-lq and --reference-gt go together: pass both folders")
    reference = reference_difficulty(args.reference_lq, args.reference_gt) if args.reference_lq else None
    print(render_report(args.run_dir, args.out, reference))
    return 0
