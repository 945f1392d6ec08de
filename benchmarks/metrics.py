"""Throughput and memory of the one-pass folder evaluation versus the separate reference tools (JSON).

Arms, each in its own process (peak RSS of the process and its children is measured at exit):
  one_pass      evaluate_folders (what `bench evaluate` runs): PSNR+SSIM+LPIPS(alex)+FID, cold GT cache
  one_pass_warm the same with the GT Inception features already cached (re-scoring another method)
  separate      `python -m pytorch_fid GT PRED` followed by a plain LPIPS loop (lpips.LPIPS(net='alex'), one
                pair at a time, PIL -> [-1,1]) over the same folders
  ssim_cli      `bench evaluate --metrics ssim` as a command (start-up and exit included) on --ssim-n pairs, versus
  ssim_skimage  a plain loop: PIL decode + skimage `structural_similarity` (Gaussian, sigma 1.5) per pair
  rss           one-pass peak RSS (--rss-metrics) at two set sizes: memory must not grow with N
The ssim and rss arms run --repeat times, arms alternating, and report the min and the spread. With
--before DIR (a checkout of the code before a change, e.g. `git archive main | tar -x -C DIR`) the bench
arms also run DIR's code, side by side in the same run.

Offline: the networks are seeded random stand-ins written into a temporary TORCH_HOME under the libraries'
own file names (bench/metrics/standins.py), which costs the same per image as the real weights. Random
weights produce denormal floats that slow CPU convolutions; every torch arm runs with denormals flushed
(the skimage loop imports no torch).

    python benchmarks/metrics.py                       # CPU defaults: N=12 at 1024 px, RSS at 12 vs 200
    python benchmarks/metrics.py --arms ssim --ssim-n 30 --before /tmp/before   # SSIM speed-up, before/after
    python benchmarks/metrics.py --device cuda --n 200 --rss-n 50 200
    python benchmarks/metrics.py --arms ssim --python cpu_torch=/tmp/venv-cpu/bin/python  # start-up per torch build
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Own peak from VmHWM, not ru_maxrss: Linux folds the RSS of the memory a process had before exec (here
# the benchmark's own, ~750 MiB after writing the stand-ins, through vfork) into ru_maxrss.
REPORT_USAGE = """
import json, os, resource, runpy, sys
def _report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    with open("/proc/self/status") as status:
        own_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_RSS_FILE"], "w") as f:
        json.dump({"peak_rss_mib": max(own_kib, kids.ru_maxrss) / 1024, "cpu_seconds": cpu}, f)
"""
CHILD_PRELUDE = REPORT_USAGE + "import torch\ntorch.set_flush_denormal(True)\n"  # the arms that run torch


def pair_loop(prelude: str, name: str, setup: str) -> str:
    """Child code: SETUP defines score(pred_path, gt_path); the mean over the pairs of argv[1:3] is printed."""
    return prelude + setup + f"""
from pathlib import Path
gt_dir, pred_dir = Path(sys.argv[1]), Path(sys.argv[2])
values = [score(pred_dir / g.name, g) for g in sorted(gt_dir.glob("*.png"))]
print("{name}", sum(values) / len(values))
_report()
"""


PYTORCH_FID = (
    CHILD_PRELUDE
    + """
sys.argv = ["pytorch_fid", *sys.argv[1:]]
try:
    runpy.run_module("pytorch_fid", run_name="__main__")
finally:
    _report()
"""
)

LPIPS_LOOP = pair_loop(CHILD_PRELUDE, "LPIPS", """
import warnings
import lpips, numpy as np
from PIL import Image
device = sys.argv[3]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)
def load(p):
    x = torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 127.5 - 1
    return x.to(device)
@torch.no_grad()
def score(pred, gt):
    return model(load(pred), load(gt)).item()
""")

ONE_PASS = (
    CHILD_PRELUDE
    + """
from pathlib import Path
from bench.metrics.standins import registry_for
from bench.weights import weights_dir
gt_dir, pred_dir, device, cache, use_cache, metrics = *sys.argv[1:5], sys.argv[5] == "1", sys.argv[6].split(",")
registry = registry_for({"inception-fid": weights_dir() / "pt_inception-2015-12-05-6726825d.pth",
                         "lpips-alex": weights_dir() / "alexnet-owt-7be5be79.pth"})
from bench.metrics.evaluate import evaluate_folders
rows, _ = evaluate_folders(gt_dir, pred_dir, metrics=metrics, device=device,
                           registry=registry, use_cache=use_cache, cache=Path(cache), progress=False)
print(json.dumps({**{r["metric"]: r["value"] for r in rows}, "gt_cache": rows[-1].get("gt_cache")}))
_report()
"""
)

SKIMAGE_SSIM_LOOP = pair_loop(REPORT_USAGE, "SSIM", """
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity
def score(pred, gt):
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in (pred, gt))
    return structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
""")

# The `bench` command as its console script runs it (console(): main, then gc.freeze; checkouts from
# before that change have only main). No torch prelude: the command imports torch itself, and SSIM runs
# no network, so denormals do not matter.
BENCH_COMMAND = REPORT_USAGE + """
from bench import cli
entry = getattr(cli, "console", cli.main)
try:
    code = entry(sys.argv[1:])
finally:
    _report()
sys.exit(code)
"""


def make_folders(root: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """N synthetic 8-bit PNG pairs (smooth random fields + noise; prediction = blurred, noisier GT).

    Seeded, so a complete pair of folders left in --workdir by an earlier run is used again as it is."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    gt_dir, pred_dir = root / f"gt{n}-{size}px", root / f"pred{n}-{size}px"
    if all(folder.is_dir() and len(list(folder.glob("*.png"))) == n for folder in (gt_dir, pred_dir)):
        return gt_dir, pred_dir
    gt_dir.mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for i in range(n):
        coarse = torch.rand(1, 3, 16, 16, generator=generator)
        gt = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
        gt = (gt + 0.05 * torch.randn(gt.shape, generator=generator)).clamp(0, 1)
        pred = F.avg_pool2d(gt, 5, stride=1, padding=2) + 0.03 * torch.randn(gt.shape, generator=generator)
        for folder, image in ((gt_dir, gt), (pred_dir, pred.clamp(0, 1))):
            array = (image[0].permute(1, 2, 0) * 255).round().byte().numpy()
            Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{i:04d}.png", compress_level=1)
    return gt_dir, pred_dir


def run_child(code: str, args: list[str], env: dict, python: str = sys.executable) -> dict:
    """Run CODE in a fresh PYTHON (in the temporary folder, so `import bench` follows PYTHONPATH)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        rss_file = f.name
    start = time.perf_counter()
    result = subprocess.run(
        [python, "-c", code, *args],
        env={**env, "BENCH_RSS_FILE": rss_file},
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"child failed ({args}):\n{result.stderr[-3000:]}")
    usage = json.loads(Path(rss_file).read_text())
    os.unlink(rss_file)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage["cpu_seconds"], 2),
        "peak_rss_mib": round(usage["peak_rss_mib"], 1),
        "stdout": result.stdout.strip()[-300:],
    }


def spread(runs: list[dict], key: str = "seconds") -> dict:
    """Min, max and every value of KEY over repeated runs of one arm."""
    values = [run[key] for run in runs]
    return {f"{key}_min": min(values), f"{key}_max": max(values), key: values}


ARMS = ("throughput", "ssim", "rss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    parser.add_argument("--n", type=int, default=12, help="image pairs for the throughput comparison")
    parser.add_argument("--ssim-n", type=int, default=30, help="image pairs for the SSIM command-vs-skimage arm")
    parser.add_argument("--rss-n", type=int, nargs=2, default=[12, 200], help="two set sizes for peak RSS")
    parser.add_argument("--rss-metrics", default="psnr,ssim", help="metrics of the peak-RSS one pass")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each ssim/rss arm, alternating (default 3)")
    parser.add_argument("--before", metavar="DIR", help="a checkout of the code before the change: bench arms "
                        "run it too, side by side")
    parser.add_argument("--python", metavar="LABEL=PATH", action="append", default=[],
                        help="also time `bench evaluate` (this checkout) under another interpreter, e.g. a venv "
                             "with the CPU-only torch wheel: start-up is mostly `import torch`, which the "
                             "build decides (ssim arm; repeatable)")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workdir", help="keep images and weights here (default: a temporary folder)")
    args = parser.parse_args()
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    if set(arms) - set(ARMS):
        parser.error(f"--arms: unknown {sorted(set(arms) - set(ARMS))}; choose from {', '.join(ARMS)}")

    from bench.metrics.standins import write_alexnet, write_fid_inception

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(args.workdir or tmp)
        checkpoints = root / "torch_home" / "hub" / "checkpoints"
        write_fid_inception(checkpoints)
        write_alexnet(checkpoints)
        env = {**os.environ, "TORCH_HOME": str(root / "torch_home")}
        env.pop("PANINI_BENCH_WEIGHTS", None)
        trees = {"after": REPO, **({"before": Path(args.before).resolve()} if args.before else {})}
        envs = {label: {**env, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
                for label, tree in trees.items()}

        pythons = {label: sys.executable for label in envs}
        for item in args.python:
            label, _, path = item.partition("=")
            if not label or not path or label in envs:
                parser.error(f"--python: expected a new LABEL=PATH, got {item!r}")
            envs[label], pythons[label] = envs["after"], path

        import torch

        report = {
            "device": args.device,
            "threads": torch.get_num_threads(),
            "load_average_1min_at_start": round(os.getloadavg()[0], 2),
            "size": args.size,
            "code": {label: str(tree) for label, tree in trees.items()},
            "python": pythons,
            "weights": "seeded random stand-ins (BN-calibrated FID Inception, random AlexNet), denormals flushed",
        }
        if "throughput" in arms:
            report.update(throughput(root, args, envs["after"]))
        if "ssim" in arms:
            report["ssim_command_vs_skimage_loop"] = ssim_arm(root, args, envs, pythons)
        if "rss" in arms:
            report["one_pass_peak_rss"] = rss_arm(root, args, {label: envs[label] for label in trees})
        report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


def ssim_arm(root: Path, args, envs: dict, pythons: dict) -> dict:
    """`bench evaluate --metrics ssim` (a whole command, start-up included) versus a plain skimage loop."""
    gt_dir, pred_dir = make_folders(root, args.ssim_n, args.size)
    scores = root / "ssim.json"
    command = ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--metrics", "ssim", "--device", args.device,
               "--json", str(scores)]
    runs: dict[str, list] = {label: [] for label in [*envs, "skimage"]}
    means = {}
    for _ in range(args.repeat):
        for label, env in envs.items():
            runs[label].append(run_child(BENCH_COMMAND, command, env, pythons[label]))
            means[label] = json.loads(scores.read_text())["results"][0]["value"]
        runs["skimage"].append(run_child(SKIMAGE_SSIM_LOOP, [str(gt_dir), str(pred_dir)], envs["after"]))
        means["skimage"] = float(runs["skimage"][-1]["stdout"].rsplit("SSIM", 1)[1])
    report = {"n_pairs": args.ssim_n, "repeat": args.repeat, "skimage_loop": spread(runs["skimage"])}
    for label in envs:
        ratios = [loop["seconds"] / ours["seconds"] for ours, loop in zip(runs[label], runs["skimage"], strict=True)]
        report[f"bench_evaluate_ssim_{label}"] = {
            **spread(runs[label]),
            **spread(runs[label], "cpu_seconds"),
            "speedup_vs_skimage_of_min_times": round(spread(runs["skimage"])["seconds_min"]
                                                     / spread(runs[label])["seconds_min"], 2),
            "speedup_vs_skimage_per_round": [round(r, 2) for r in ratios],
            "abs_diff_of_mean_vs_skimage": abs(means[label] - means["skimage"]),
        }
    return report


def rss_arm(root: Path, args, envs: dict) -> dict:
    """One-pass peak RSS at two set sizes: the growth from the smaller to the larger must stay within 3%."""
    folders = {n: make_folders(root, n, args.size) for n in args.rss_n}
    cache = root / "cache"
    peaks = {label: {n: [] for n in args.rss_n} for label in envs}
    for _ in range(args.repeat):
        for n, (gt_dir, pred_dir) in folders.items():
            for label, env in envs.items():
                child_args = [str(gt_dir), str(pred_dir), args.device, str(cache), "0", args.rss_metrics]
                peaks[label][n].append(run_child(ONE_PASS, child_args, env)["peak_rss_mib"])
    small, large = args.rss_n
    report = {"metrics": args.rss_metrics, "repeat": args.repeat}
    for label, by_n in peaks.items():
        growth = [100 * (b / a - 1) for a, b in zip(by_n[small], by_n[large], strict=True)]
        report[label] = {
            **{f"peak_rss_mib_n{n}": values for n, values in by_n.items()},
            f"growth_percent_{small}_to_{large}_of_min_peaks": round(100 * (min(by_n[large]) / min(by_n[small]) - 1),
                                                                     1),
            f"growth_percent_{small}_to_{large}_per_round": [round(g, 1) for g in growth],
        }
    return report


def throughput(root: Path, args, env: dict) -> dict:
    """One pass (cold and warm GT cache) versus pytorch-fid + an LPIPS loop."""
    gt_dir, pred_dir = make_folders(root, args.n, args.size)
    n = args.n
    cache = root / "cache"  # empty: the first run is cold and writes the GT features, the second reads them
    one_pass = [str(gt_dir), str(pred_dir), args.device, str(cache), "1", "psnr,ssim,lpips,fid"]
    one = run_child(ONE_PASS, one_pass, env)
    warm = run_child(ONE_PASS, one_pass, env)
    fid = run_child(PYTORCH_FID, [str(gt_dir), str(pred_dir), "--device", args.device], env)
    lp = run_child(LPIPS_LOOP, [str(gt_dir), str(pred_dir), args.device], env)
    separate_s = fid["seconds"] + lp["seconds"]

    ours = json.loads(one["stdout"].splitlines()[-1])
    cli_fid = float(fid["stdout"].rsplit("FID:", 1)[1])
    loop_lpips = float(lp["stdout"].rsplit("LPIPS", 1)[1])
    return {
        "n_pairs": n,
        "one_pass_psnr_ssim_lpips_fid": {**one, "pairs_per_s": round(n / one["seconds"], 3)},
        "one_pass_gt_cache_warm": {**warm, "pairs_per_s": round(n / warm["seconds"], 3)},
        "separate_pytorch_fid": fid,
        "separate_lpips_loop": lp,
        "separate_total": {
            "seconds": round(separate_s, 2),
            "pairs_per_s": round(n / separate_s, 3),
            "note": "PSNR/SSIM not included in the separate arm",
        },
        "speedup_cold": round(separate_s / one["seconds"], 2),
        "speedup_warm": round(separate_s / warm["seconds"], 2),
        "cpu_seconds_ratio_cold": round((fid["cpu_seconds"] + lp["cpu_seconds"]) / one["cpu_seconds"], 2),
        "cpu_seconds_ratio_warm": round((fid["cpu_seconds"] + lp["cpu_seconds"]) / warm["cpu_seconds"], 2),
        "agreement": {
            "fid_rel_diff_vs_pytorch_fid_cli": abs(ours["fid"] - cli_fid) / abs(cli_fid),
            "lpips_abs_diff_vs_loop": abs(ours["lpips"] - loop_lpips),
        },
    }


if __name__ == "__main__":
    main()
