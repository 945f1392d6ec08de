"""Wall time of `bench run`: the `ci` experiment, and N images at 1024 with bicubic + tiny Panini-Net.

Prints one JSON object: for each run, total wall seconds and the runner's own breakdown (test-set
build, restore, scoring, analysis) plus the report, and the wall time of a `--resume` of the
finished run (everything reused). Usage:

    python benchmarks/run.py [--count 100] [--device cpu|cuda] [--threads 2] [--skip-ci]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BIG = """
[experiment]
name = "bench-run"
table = "bench"
metrics = ["psnr", "ssim"]
batch_size = {batch}
bootstrap = 1000
grid_images = 4

[[testsets]]
name = "synthetic-mfr"
task = "mfr"
count = {count}
workers = {workers}

[[methods]]
name = "Bicubic"
method = "bicubic"

[[methods]]
name = "Panini-Net (tiny, random)"
method = "panini-mfr"
options = {{ config = "tiny", random_init_seed = 0 }}
resize_input = "area"
resize_output = "bicubic"
"""


def timed_run(exp, out: Path, device: str, resume: bool = False) -> dict:
    from bench.io import read_json
    from bench.reports.html import render_report
    from bench.runner import Runner

    start = time.perf_counter()
    Runner(exp, out, device=device, resume=resume, progress=False, log=lambda *a, **k: None).run()
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    render_report(out)
    report_s = time.perf_counter() - start
    info = read_json(out / "run.json")
    return {"wall_s": round(run_s + report_s, 2), "run_s": round(run_s, 2), "report_s": round(report_s, 2),
            "breakdown_s": info["timings"], "status": info["status"], "failures": len(info["failures"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="images in the large run (default 100)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="test-set build workers")
    parser.add_argument("--skip-ci", action="store_true")
    parser.add_argument("--keep", help="keep the run folders here instead of a temporary folder")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.experiment import load_experiment

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-run-"))
    result = {"device": args.device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "torch": torch.__version__}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(0)
    try:
        if not args.skip_ci:
            result["ci"] = timed_run(load_experiment("ci"), root / "ci", args.device)
        path = root / "bench-run.toml"
        path.write_text(BIG.format(count=args.count, batch=args.batch, workers=args.workers))
        exp = load_experiment(path)
        big = timed_run(exp, root / "big", args.device)
        big["images"] = args.count
        big["methods"] = [m["name"] for m in exp.config["methods"]]
        start = time.perf_counter()
        from bench.runner import Runner

        Runner(exp, root / "big", device=args.device, resume=True, progress=False, log=lambda *a, **k: None).run()
        big["resume_all_cached_s"] = round(time.perf_counter() - start, 2)
        result[f"run_{args.count}_images_1024"] = big
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
