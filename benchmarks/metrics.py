"""Throughput and memory of the one-pass folder evaluation versus the separate reference tools (JSON).

Arms, each in its own process (peak RSS of the process and its children is measured at exit):
  one_pass      evaluate_folders (what `bench evaluate` runs): PSNR+SSIM+LPIPS(alex)+FID, cold GT cache
  one_pass_warm the same with the GT Inception features already cached (re-scoring another method)
  separate      `python -m pytorch_fid GT PRED` followed by a plain LPIPS loop (lpips.LPIPS(net='alex'), one
                pair at a time, PIL -> [-1,1]) over the same folders
  ssim_cli      `bench evaluate --metrics ssim` as a command (start-up included) on --ssim-n pairs, versus
  ssim_skimage  a plain loop: PIL decode + skimage `structural_similarity` (Gaussian, sigma 1.5) per pair
and the one-pass peak RSS at two set sizes (memory must not grow with N).

Offline: the networks are seeded random stand-ins written into a temporary TORCH_HOME under the libraries'
own file names (bench/metrics/standins.py), which costs the same per image as the real weights. Random
weights produce denormal floats that slow CPU convolutions; every arm runs with denormals flushed.

    python benchmarks/metrics.py                       # CPU defaults: N=12 at 1024 px, RSS at 12 vs 48
    python benchmarks/metrics.py --device cuda --n 200 --rss-n 50 200
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

CHILD_PRELUDE = """
import json, os, resource, runpy, sys, torch
torch.set_flush_denormal(True)
def _report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    with open(os.environ["BENCH_RSS_FILE"], "w") as f:
        json.dump({"peak_rss_mib": max(me.ru_maxrss, kids.ru_maxrss) / 1024, "cpu_seconds": cpu}, f)
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

LPIPS_LOOP = (
    CHILD_PRELUDE
    + """
import warnings
from pathlib import Path
import lpips, numpy as np
from PIL import Image
gt_dir, pred_dir, device = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)
def load(p):
    x = torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 127.5 - 1
    return x.to(device)
values = []
with torch.no_grad():
    for g in sorted(gt_dir.glob("*.png")):
        values.append(model(load(pred_dir / g.name), load(g)).item())
print("LPIPS", sum(values) / len(values))
_report()
"""
)

ONE_PASS = (
    CHILD_PRELUDE
    + """
from pathlib import Path
from bench.metrics.standins import registry_for
from bench.weights import weights_dir
gt_dir, pred_dir, device, cache, use_cache = *sys.argv[1:5], sys.argv[5] == "1"
registry = registry_for({"inception-fid": weights_dir() / "pt_inception-2015-12-05-6726825d.pth",
                         "lpips-alex": weights_dir() / "alexnet-owt-7be5be79.pth"})
from bench.metrics.evaluate import evaluate_folders
rows, _ = evaluate_folders(gt_dir, pred_dir, metrics=["psnr", "ssim", "lpips", "fid"], device=device,
                           registry=registry, use_cache=use_cache, cache=Path(cache), progress=False)
print(json.dumps({**{r["metric"]: r["value"] for r in rows}, "gt_cache": rows[-1].get("gt_cache")}))
_report()
"""
)

SKIMAGE_SSIM_LOOP = (
    CHILD_PRELUDE
    + """
from pathlib import Path
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity
gt_dir, pred_dir = Path(sys.argv[1]), Path(sys.argv[2])
values = []
for g in sorted(gt_dir.glob("*.png")):
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in (pred_dir / g.name, g))
    values.append(structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False))
print("SSIM", sum(values) / len(values))
_report()
"""
)

BENCH_CLI = (
    CHILD_PRELUDE
    + """
from bench.cli import main
try:
    code = main(sys.argv[1:])
finally:
    _report()
sys.exit(code)
"""
)


def make_folders(root: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """N synthetic 8-bit PNG pairs (smooth random fields + noise; prediction = blurred, noisier GT)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    gt_dir, pred_dir = root / f"gt{n}", root / f"pred{n}"
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


def run_child(code: str, args: list[str], env: dict) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        rss_file = f.name
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**env, "BENCH_RSS_FILE": rss_file},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=12, help="image pairs for the throughput comparison")
    parser.add_argument("--rss-n", type=int, nargs=2, default=[12, 48], help="two set sizes for peak RSS")
    parser.add_argument("--ssim-n", type=int, default=30, help="image pairs for the SSIM command-vs-skimage arm")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workdir", help="keep images and weights here (default: a temporary folder)")
    parser.add_argument("--skip-rss", action="store_true", help="leave out the peak-RSS arm")
    parser.add_argument("--skip-ssim", action="store_true", help="leave out the SSIM command-vs-skimage arm")
    parser.add_argument("--only-ssim", action="store_true", help="only the SSIM command-vs-skimage arm")
    args = parser.parse_args()

    from bench.metrics.standins import write_alexnet, write_fid_inception

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(args.workdir or tmp)
        checkpoints = root / "torch_home" / "hub" / "checkpoints"
        write_fid_inception(checkpoints)
        write_alexnet(checkpoints)
        env = {
            **os.environ,
            "TORCH_HOME": str(root / "torch_home"),
            "BENCH_REPO": str(REPO),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        env.pop("PANINI_BENCH_WEIGHTS", None)

        import torch

        report = {
            "device": args.device,
            "threads": torch.get_num_threads(),
            "load_average_1min_at_start": round(os.getloadavg()[0], 2),
            "size": args.size,
            "weights": "seeded random stand-ins (BN-calibrated FID Inception, random AlexNet), denormals flushed",
        }
        if not args.only_ssim:
            report.update(throughput_and_rss(root, args, env))
        if not args.skip_ssim:
            report["ssim_command_vs_skimage_loop"] = ssim_arm(root, args, env)
        report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


def ssim_arm(root: Path, args, env: dict) -> dict:
    """`bench evaluate --metrics ssim` (a whole command, start-up included) versus a plain skimage loop."""
    gt_dir, pred_dir = make_folders(root, args.ssim_n, args.size)
    scores = root / "ssim.json"
    command = ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--metrics", "ssim", "--device", args.device]
    ours = run_child(BENCH_CLI, [*command, "--json", str(scores)], env)
    loop = run_child(SKIMAGE_SSIM_LOOP, [str(gt_dir), str(pred_dir)], env)
    ours_ssim = json.loads(scores.read_text())["results"][0]["value"]
    loop_ssim = float(loop["stdout"].rsplit("SSIM", 1)[1])
    return {
        "n_pairs": args.ssim_n,
        "bench_evaluate_ssim": ours,
        "skimage_loop": loop,
        "speedup": round(loop["seconds"] / ours["seconds"], 2),
        "abs_diff_of_mean": abs(ours_ssim - loop_ssim),
    }


def throughput_and_rss(root: Path, args, env: dict) -> dict:
    """One pass (cold and warm GT cache) versus pytorch-fid + an LPIPS loop; one-pass peak RSS at two N."""
    gt_dir, pred_dir = make_folders(root, args.n, args.size)
    n = args.n
    cache = root / "cache"  # empty: the first run is cold and writes the GT features, the second reads them
    one = run_child(ONE_PASS, [str(gt_dir), str(pred_dir), args.device, str(cache), "1"], env)
    warm = run_child(ONE_PASS, [str(gt_dir), str(pred_dir), args.device, str(cache), "1"], env)
    fid = run_child(PYTORCH_FID, [str(gt_dir), str(pred_dir), "--device", args.device], env)
    lp = run_child(LPIPS_LOOP, [str(gt_dir), str(pred_dir), args.device], env)
    separate_s = fid["seconds"] + lp["seconds"]

    rss = {}
    for size_n in [] if args.skip_rss else args.rss_n:
        if size_n == n:
            rss[str(size_n)] = one["peak_rss_mib"]
            continue
        g, p = make_folders(root, size_n, args.size)
        rss[str(size_n)] = run_child(ONE_PASS, [str(g), str(p), args.device, str(cache), "0"], env)["peak_rss_mib"]

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
        "one_pass_peak_rss_mib_by_n": rss,
        "agreement": {
            "fid_rel_diff_vs_pytorch_fid_cli": abs(ours["fid"] - cli_fid) / abs(cli_fid),
            "lpips_abs_diff_vs_loop": abs(ours["lpips"] - loop_lpips),
        },
    }


if __name__ == "__main__":
    main()
