"""Does UDRL pre-training help? Tiny UDRL -> tiny Panini-Net MFR versus the same Panini with a random DRE.

CPU, synthetic faces, minutes. For each seed: `bench train udrl` (the DRE sees the same 128 -> 64 px
Eq. (10) LQ images as the Panini run), then two `bench train panini` runs that differ only in
`model.dre` (the UDRL `dre.pth`, loaded through `model.dre`, or "random"); prints the held-out
validation PSNR of both, per seed and on average, as JSON. Example:
`python benchmarks/udrl_to_panini.py --out /tmp/chain --seeds 0 1 --panini-iterations 300`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from bench.methods.train.config import load_config
from bench.methods.train.loop import run_task


def _values(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [row[key] for row in rows if key in row]


def chain(out: Path, seed: int, udrl_iterations: int, panini_iterations: int, val_count: int) -> dict:
    panini_base = load_config("panini", "train-panini-tiny")
    d = panini_base.data
    # UDRL on the images the Panini DRE will see: the tiny Panini data, its 64 px LQ at the DRE's input size
    options = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.degradation_options.items()) + " }"
    common = [f"run.seed={seed}", "run.progress=false", "run.threads=1", "run.tensorboard=false"]
    udrl_dir = out / f"seed{seed}" / "udrl"
    udrl = load_config("udrl", "train-udrl-tiny", [
        *common, f"run.out_dir='{udrl_dir}'", f"run.iterations={udrl_iterations}", f"run.val_every={udrl_iterations}",
        f"run.checkpoint_every={udrl_iterations}", f"data.gt_size={d.gt_size}", f"data.lq_size={d.lq_size}",
        f"model.input_size={d.lq_size}", f"data.degradation_options={options}"])
    t0 = time.perf_counter()
    dre = run_task("udrl", udrl)["artefacts"]["dre"]
    row = {"seed": seed, "udrl_s": round(time.perf_counter() - t0, 1),
           "udrl_val_infonce_start_end": [round(v, 3) for v in _values(udrl_dir, "val/infonce")]}
    for name, dre_source in (("udrl_dre", dre), ("random_dre", "random")):
        run_dir = out / f"seed{seed}" / name
        config = load_config("panini", "train-panini-tiny", [
            *common, f"run.out_dir='{run_dir}'", f"run.iterations={panini_iterations}",
            f"run.val_every={panini_iterations}", f"run.checkpoint_every={panini_iterations}",
            "loss.perceptual=0.0", f"data.val_count={val_count}", f"model.dre='{dre_source}'"])
        t0 = time.perf_counter()
        run_task("panini", config)
        row[f"{name}_val_psnr"] = round(_values(run_dir, "val/psnr")[-1], 3)
        row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
    row["gain_db"] = round(row["udrl_dre_val_psnr"] - row["random_dre_val_psnr"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--udrl-iterations", type=int, default=200)
    parser.add_argument("--panini-iterations", type=int, default=300)
    parser.add_argument("--val-count", type=int, default=16, help="held-out synthetic faces for the PSNR")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [chain(args.out, s, args.udrl_iterations, args.panini_iterations, args.val_count) for s in args.seeds]
    gains = [r["gain_db"] for r in rows]
    summary = {"mean_gain_db": round(statistics.mean(gains), 3), "seeds_with_gain": sum(g > 0 for g in gains),
               "seeds": len(gains)}
    info = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    print(json.dumps({"benchmark": "udrl_to_panini", "info": info, "results": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
