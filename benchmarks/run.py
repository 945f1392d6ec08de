"""Wall time of `bench run` by stage: the `ci` experiment and N images at 1024, or the paper's experiments.

Default: the `ci` experiment and N images at 1024 with bicubic + tiny Panini-Net, each with the runner's
own breakdown (test-set build, restore, scoring, analysis) plus the report, and a `--resume` of the
finished run (everything reused).

`--paper N [N2]` / `--full`: the bundled Tables 1-4 and Fig. 7 experiments as shipped (methods, metrics,
bootstrap, batch size, build workers), except: at most N source images per test set (`--full`: the
bundled counts, 1000 for Tables 1-3), the built-in synthetic faces as the source (made in the build
workers, which costs more than decoding CelebA-HQ files), seeded random weights for every method
(`--arch official`: the released architectures, the default on CUDA; `tiny`: the CPU default) and
seeded random stand-ins for the FID Inception and LPIPS AlexNet (same cost per image as the real
files; written to a temporary TORCH_HOME). Each stage is projected to the bundled count along a line
through the two sizes (fixed cost + cost per image); from one size it is scaled in proportion, fixed
costs (model and metric network loading, pool start) included, which overestimates. Usage:

    python benchmarks/run.py [--count 100] [--device cpu|cuda] [--threads 2] [--skip-ci]
    python benchmarks/run.py --device cuda --full          # the paper's experiments at full size
    python benchmarks/run.py --paper 2 4 [--experiments table1_mfr table2_sr16]   # CPU: tiny, fitted
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

import tomllib

PAPER_EXPERIMENTS = ("table1_mfr", "table2_sr16", "table3_fusion", "table4_theta", "fig7_dissection")
STAGES = ("testsets", "restore", "scoring", "analysis", "report")

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


def timed_run(exp, out: Path, device: str, resume: bool = False, metric_registry=None) -> dict:
    from bench.io import read_json
    from bench.reports.html import render_report
    from bench.runner import Runner

    start = time.perf_counter()
    Runner(exp, out, device=device, resume=resume, progress=False, log=lambda *a, **k: None,
           metric_registry=metric_registry).run()
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    render_report(out)
    report_s = time.perf_counter() - start
    info = read_json(out / "run.json")
    return {"wall_s": round(run_s + report_s, 2), "run_s": round(run_s, 2), "report_s": round(report_s, 2),
            "breakdown_s": info["timings"], "status": info["status"], "failures": len(info["failures"]),
            "failure_messages": [f"{f['method']} / {f['stage']}: {f['error']}"[:300] for f in info["failures"]]}


def paper_experiment(name: str, max_images: int | None, arch: str):
    """A bundled experiment with at most N (None: all) synthetic source images and seeded random weights,
    and its bundled image counts."""
    from bench.experiment import CONFIG_DIR, Experiment, parse_experiment

    data = tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    bundled = {t["name"]: t["count"] for t in data["testsets"]}
    for ts in data["testsets"]:
        ts.update(source="synthetic", count=min(max_images or ts["count"], ts["count"]))
    for method in data["methods"]:
        method.pop("weights", None)
        method["options"] = {**method.get("options", {}), "config": arch, "random_init_seed": 0}
        if arch == "tiny":  # tiny networks take and give small images: resize as the ci experiment does
            method.setdefault("resize_input", "area")
            if method.get("restore", True):
                method.setdefault("resize_output", "bicubic")
    data["experiment"]["expected"] = ""  # random weights: nothing to compare with the paper
    source = f"benchmarks/run.py: {name}, {arch} architectures, random weights"
    return Experiment(parse_experiment(data, source), source, CONFIG_DIR), bundled


def metric_stand_ins(root: Path):
    """Seeded random FID Inception and LPIPS AlexNet files in a fresh TORCH_HOME; the registry that accepts them."""
    from bench.metrics.standins import registry_for, write_alexnet, write_fid_inception

    os.environ["TORCH_HOME"] = str(root / "torch_home")
    os.environ["PANINI_BENCH_CACHE"] = str(root / "cache")  # no cached GT features from earlier runs
    os.environ.pop("PANINI_BENCH_WEIGHTS", None)
    checkpoints = root / "torch_home" / "hub" / "checkpoints"
    files = {"inception-fid": write_fid_inception(checkpoints), "lpips-alex": write_alexnet(checkpoints)}
    return registry_for(files)


def project(sizes: list[int], seconds: list[float], target: int) -> float:
    """Seconds at `target` images: the measured value, a line through two sizes (fixed + per-image cost), or
    for one size a proportional scaling (fixed costs scaled too: an overestimate)."""
    if target in sizes:
        return seconds[sizes.index(target)]
    if len(sizes) == 1:
        return seconds[0] * target / sizes[0]
    per_image = max(0.0, (seconds[-1] - seconds[0]) / (sizes[-1] - sizes[0]))
    return max(0.0, seconds[0] - per_image * sizes[0]) + per_image * target


def time_paper(root: Path, device: str, sizes: list[int | None], arch: str, names: list[str],
               metric_registry=None) -> dict:
    """Each paper experiment by stage at min(N, bundled) images for each N, projected to the bundled count."""
    experiments, projected_total = {}, 0.0
    for name in names:
        runs = []
        for max_images in sizes:
            exp, bundled = paper_experiment(name, max_images, arch)
            used = sum(t["count"] for t in exp.config["testsets"])
            if runs and used == runs[-1]["images"]:
                break  # the bundled count is below this size: already measured
            timed = timed_run(exp, root / f"{name}-{max_images}", device, metric_registry=metric_registry)
            stages = {**timed.pop("breakdown_s"), "report": timed["report_s"]}
            runs.append({"images": used, "stages_s": {k: stages.get(k, 0.0) for k in STAGES}, **timed})
        target = sum(bundled.values())
        used_sizes = [r["images"] for r in runs]
        projected = {k: round(project(used_sizes, [r["stages_s"][k] for r in runs], target), 1) for k in STAGES}
        projected_total += sum(projected.values())
        experiments[name] = {
            "bundled_images": target, "methods": [m["name"] for m in exp.config["methods"]],
            "metrics": exp.config["experiment"]["metrics"], "runs": runs,
            "projected_s": projected, "projected_total_s": round(sum(projected.values()), 1),
            "projection": "measured" if target in used_sizes else
            "line through two sizes" if len(runs) > 1 else "proportional to one size (overestimate)",
        }
    return {
        "architectures": arch, "experiments": experiments,
        "projected_all_s": round(projected_total, 1), "projected_all_min": round(projected_total / 60, 1),
        "source": "built-in synthetic faces; seeded random method weights and metric networks",
        "goal": "Tables 1-4 and Fig. 7 < 30 min on one H200-class GPU (official architectures, --full)",
    }

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="images in the large run (default 100)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="test-set build workers")
    parser.add_argument("--skip-ci", action="store_true")
    parser.add_argument("--keep", help="keep the run folders here instead of a temporary folder")
    parser.add_argument("--paper", type=int, nargs="+", metavar="N",
                        help="time the paper's experiments at <= N images each (two sizes: fit fixed + per-image cost)")
    parser.add_argument("--experiments", nargs="+", choices=PAPER_EXPERIMENTS, default=list(PAPER_EXPERIMENTS))
    parser.add_argument("--full", action="store_true", help="time the paper's experiments at their full size")
    parser.add_argument("--arch", choices=("official", "tiny"),
                        help="method architectures for --paper/--full (default: official on CUDA, tiny on CPU)")
    args = parser.parse_args(argv)

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
        if args.full or args.paper:
            if args.paper and (min(args.paper) < 2 or len(args.paper) > 2):
                raise SystemExit(f"--paper takes one or two sizes of at least 2 images (FID needs 2), got {args.paper}")
            if args.device == "cpu":
                torch.set_flush_denormal(True)  # random networks make denormals that slow CPU convolutions
                result["flush_denormal"] = True
            registry = metric_stand_ins(root)
            arch = args.arch or ("official" if args.device.startswith("cuda") else "tiny")
            result["paper"] = time_paper(root, args.device, [None] if args.full else sorted(args.paper), arch,
                                         args.experiments, registry)
            result["date"] = time.strftime("%Y-%m-%d", time.gmtime())
            return
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
