"""Full-size Panini-Net forward: time and peak memory, batch 1, inference mode; prints JSON.

CPU: fp32 wall and process-CPU time per forward (default and channels-last encoder, alternating) and
the peak RSS during the forward (`--cpu-bf16`: also bf16 autocast and bf16 weights). CUDA
(`--device cuda`): fp32 with TF32 off, then fp16 and bf16 autocast, then the fast-inference paths of
`bench.methods.fast_inference` (fp32 / fp16 / bf16 weights, eager and CUDA-graph replay), each with
time, peak allocated memory after the warm-up (graph capture included), speed-up over fp32, max
|deviation| from the fp32 output and PSNR of the [0, 1] image against the fp32 one.

Weights: `--weights` takes an official checkpoint; without it the model gets a seeded random
initialisation (timings do not depend on the values; the precision numbers do, so say which was used).

    python benchmarks/panini_forward.py --task mfr --repeats 3
    python benchmarks/panini_forward.py --task both --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import torch

from bench.methods.fast_inference import FastForward
from bench.methods.panini_official import build_panini

# name, weights precision, CUDA graph: the fast-inference variants timed on the GPU
FAST_VARIANTS = (("cuda_fp32_graph", "fp32", True), ("cuda_fp16_weights", "fp16", False),
                 ("cuda_fp16_weights_graph", "fp16", True), ("cuda_bf16_weights", "bf16", False),
                 ("cuda_bf16_weights_graph", "bf16", True))
TARGET_SPEEDUP, TARGET_PSNR_DB = 1.5, 45.0  # issue 3's half-precision target on the GPU


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakRSS:
    """Peak resident memory of this process while the block runs (Linux /proc sampling every 2 ms)."""

    def __init__(self):
        self._stop = threading.Event()

    @staticmethod
    def current_mb() -> float:
        statm = Path("/proc/self/statm")
        if not statm.exists():
            return float("nan")
        return int(statm.read_text().split()[1]) * resource.getpagesize() / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.current_mb())
            time.sleep(0.002)

    def __enter__(self) -> PeakRSS:
        self.before_mb = self.peak_mb = self.current_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def time_forward(model, lq, repeats: int, dtype: torch.dtype | None, warmup: int = 1,
                 ) -> tuple[torch.Tensor, list[float]]:
    """Run `warmup` untimed forwards, then time `repeats`; `dtype` = autocast dtype or None for fp32."""
    device = lq.device
    times = []
    out = None
    for i in range(repeats + warmup):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(lq)
        _sync(device)
        if i == warmup - 1 and device.type == "cuda":
            # the warm-up's cudnn.benchmark autotuning tries algorithms with huge workspaces (33 GB
            # measured for MFR fp32 on an H200): the peak that matters is the steady state's
            torch.cuda.reset_peak_memory_stats(device)
        if i >= warmup:
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))
    return out.float(), times


def psnr01(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of the [0, 1] images ((x + 1) / 2, clamped) of two raw outputs."""
    a01, b01 = ((a + 1) / 2).clamp(0, 1), ((b + 1) / 2).clamp(0, 1)
    mse = (a01 - b01).double().pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def summary(times: list[tuple[float, float]]) -> dict[str, float]:
    """Wall-clock median/min/max and the median process CPU time (less sensitive to other processes' load)."""
    wall = sorted(t[0] for t in times)
    cpu = sorted(t[1] for t in times)
    return {"median_s": wall[len(wall) // 2], "min_s": wall[0], "max_s": wall[-1],
            "median_cpu_s": cpu[len(cpu) // 2], "n": len(times)}


def versus_fp32(out: torch.Tensor, ref: torch.Tensor, stats: dict, fp32_median_s: float) -> dict:
    return stats | {"speedup_vs_fp32": fp32_median_s / stats["median_s"],
                    "max_abs_dev_vs_fp32": (out - ref).abs().max().item(),
                    "psnr_vs_fp32_db": psnr01(out, ref), "finite": bool(torch.isfinite(out).all())}


def time_fast_variant(fp32_model, device: torch.device, lq, repeats: int, precision: str, cuda_graph: bool):
    """Time a FastForward over a fresh copy of `fp32_model` on `device` (the first call captures the graph)."""
    fast = FastForward(copy.deepcopy(fp32_model).to(device), precision, cuda_graph)
    return time_forward(fast, lq, repeats, None)


def run_task(task: str, args: argparse.Namespace, device: torch.device) -> dict:
    model = build_panini(task, weights=args.weights, device=str(device), config=args.config,
                         random_init_seed=None if args.weights else args.seed)
    size = model.config.in_size
    lq = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(args.seed)) * 2 - 1).to(device)
    result: dict = {"task": task, "input": [1, 3, size, size], "output_size": model.config.out_size,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "weights": args.weights or f"random init, seed {args.seed}"}
    if device.type == "cpu":
        # the two layouts alternate, so that load from other processes hits both alike
        runs: dict[str, list[tuple[float, float]]] = {"cpu_fp32": [], "cpu_fp32_channels_last": []}
        outputs, memory = {}, {}
        for rep in range(args.repeats + 1):  # round 0 = warm-up of both layouts, untimed
            for name in runs:
                model.set_channels_last(name.endswith("channels_last"))
                with PeakRSS() as rss:
                    outputs[name], times = time_forward(model, lq, 1, None, warmup=0)
                if rep == 0:
                    continue
                runs[name] += times
                memory[name] = {"rss_mb_before_forward": round(rss.before_mb, 1),
                                "peak_rss_mb_during_forward": round(rss.peak_mb, 1)}
        ref = outputs["cpu_fp32"]
        for name, times in runs.items():
            result[name] = summary(times) | memory[name] | {
                "max_abs_dev_vs_default_layout": (outputs[name] - ref).abs().max().item()}
        result["cpu_fp32"]["output_std"] = ref.std().item()
        result["channels_last_cpu_time_ratio"] = (
            result["cpu_fp32"]["median_cpu_s"] / result["cpu_fp32_channels_last"]["median_cpu_s"])
        model.set_channels_last(False)
        if args.cpu_bf16:
            fp32_median_s = result["cpu_fp32"]["median_s"]
            out, times = time_forward(model, lq, args.repeats, torch.bfloat16)
            result["cpu_bf16"] = versus_fp32(out, ref, summary(times), fp32_median_s)
            out, times = time_fast_variant(model, device, lq, args.repeats, "bf16", False)
            result["cpu_bf16_weights"] = versus_fp32(out, ref, summary(times), fp32_median_s)
        return result

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    ref, times = time_forward(model, lq, args.repeats, None)
    fp32 = summary(times)
    result["cuda_fp32"] = fp32 | {"peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20,
                                  "output_std": ref.std().item()}
    variants = (("cuda_fp16", torch.float16, False), ("cuda_bf16", torch.bfloat16, False),
                ("cuda_fp16_channels_last", torch.float16, True), ("cuda_fp32_channels_last", None, True))
    for name, dtype, channels_last in variants:
        model.set_channels_last(channels_last)
        out, times = time_forward(model, lq, args.repeats, dtype)
        result[name] = versus_fp32(out, ref, summary(times), fp32["median_s"]) | {
            "peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20}
    model.set_channels_last(False)
    fp32_model = copy.deepcopy(model).cpu()  # each fast variant converts its own GPU copy of these weights
    del model
    torch.cuda.empty_cache()
    for name, precision, cuda_graph in FAST_VARIANTS:
        out, times = time_fast_variant(fp32_model, device, lq, args.repeats, precision, cuda_graph)
        result[name] = versus_fp32(out, ref, summary(times), fp32["median_s"]) | {
            "peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20}
        torch.cuda.empty_cache()  # the variant's model and graph pool are gone: free them before the next
    result["half_precision_target_met_by"] = [
        name for name, r in result.items() if isinstance(r, dict) and name.startswith(("cuda_fp16", "cuda_bf16"))
        and r["speedup_vs_fp32"] >= TARGET_SPEEDUP and r["psnr_vs_fp32_db"] >= TARGET_PSNR_DB]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["mfr", "sr", "both"], default="both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", choices=["official", "tiny"], default="official", help="tiny: smoke test")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--weights", default=None, help="official checkpoint (else a seeded random init)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-bf16", action="store_true", help="also time bf16 autocast on the CPU")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tasks = ["mfr", "sr"] if args.task == "both" else [args.task]
    report = {
        "benchmark": "panini_forward",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": args.config,
        "batch": 1,
        "results": [run_task(task, args, device) for task in tasks],
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
