"""Training speed and memory: prints JSON.

CPU (default): the tiny UDRL and Panini configs (iterations/s of the optimisation step on a prepared
batch, samples/s of the data pipeline, process peak RSS). `--device cuda`: the full official-size
Panini MFR config (random-init weights, all losses on) at batch 1 and 4 in fp32 and bf16, with
iterations/s and peak CUDA memory. Example: `python benchmarks/train.py --device cuda`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch

from bench.distributed import Dist
from bench.methods.train.config import load_config
from bench.methods.train.data import collate


def _trainer(task: str, config, device: torch.device):
    env = Dist(device=str(device))
    if task == "udrl":
        from bench.methods.train.udrl import UdrlTrainer

        return UdrlTrainer(config, env)
    from bench.methods.train.panini import PaniniTrainer

    return PaniniTrainer(config, env)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(trainer, batch: dict, steps: int, warmup: int, device: torch.device) -> dict:
    for i in range(warmup):
        trainer.train_step({k: v.clone() for k, v in batch.items()}, i)
    _sync(device)
    if device.type == "cuda":  # peak of the steady state, not of cudnn.benchmark's autotuning in the warm-up
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps):
        b = {k: v.clone() for k, v in batch.items()}
        t0 = time.perf_counter()
        trainer.train_step(b, warmup + i)
        _sync(device)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"it_per_s": round(1 / med, 3), "step_ms_median": round(med * 1e3, 1),
            "step_ms_min": round(min(times) * 1e3, 1), "step_ms_max": round(max(times) * 1e3, 1), "steps": steps}


def data_rate(dataset, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        dataset[(0, i % len(dataset))]
    return round(n / (time.perf_counter() - t0), 2)


def cpu_tiny(steps: int, warmup: int) -> list[dict]:
    torch.set_num_threads(1)
    device = torch.device("cpu")
    rows = []
    for task, name in (("udrl", "train-udrl-tiny"), ("panini", "train-panini-tiny")):
        config = load_config(task, name, ["run.out_dir='/tmp/bench-train-unused'"])
        trainer = _trainer(task, config, device)
        dataset = trainer.dataset()
        batch = collate([dataset[(0, i)] for i in range(config.run.batch_size)])
        batch.pop("skipped")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        row = {"task": task, "config": name, "device": "cpu", "threads": 1, "batch": config.run.batch_size,
               **time_steps(trainer, batch, steps, warmup, device),
               "data_samples_per_s_1proc": data_rate(dataset, 2 * config.run.batch_size),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "peak_rss_mib_before_steps": round(rss_before / 1024, 1)}
        rows.append(row)
    return rows


def _cuda_step_rate(config, batch_size: int, steps: int, warmup: int, device: torch.device) -> dict:
    trainer = _trainer("panini", config, device)
    g = torch.Generator(device=device).manual_seed(0)
    batch = {"lq": torch.randint(0, 256, (batch_size, 3, 512, 512), generator=g, device=device, dtype=torch.uint8),
             "gt": torch.randint(0, 256, (batch_size, 3, 1024, 1024), generator=g, device=device, dtype=torch.uint8)}
    return time_steps(trainer, batch, steps, warmup, device)


def cuda_full(steps: int, warmup: int, batches: list[int], dtypes: list[str]) -> list[dict]:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    rows = []
    for amp in dtypes:
        for batch_size in batches:
            overrides = ["run.out_dir='/tmp/bench-train-unused'", f"run.batch_size={batch_size}", f"run.amp='{amp}'",
                         "run.device='cuda'", "model.prior='random'", "model.discriminator='random'",
                         "model.dre='random'", "loss.vgg='random'"]
            config = load_config("panini", "train-panini-mfr-official", overrides)
            row = {"task": "panini", "config": "train-panini-mfr-official (random init)", "device": "cuda",
                   "gpu": torch.cuda.get_device_name(device), "batch": batch_size, "amp": amp}
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            try:
                row.update(_cuda_step_rate(config, batch_size, steps, warmup, device))
                row["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            except torch.cuda.OutOfMemoryError as exc:  # the trainer is freed with the failed frame
                row["error"] = f"out of memory: {str(exc).splitlines()[0]}"
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10 CPU, 20 CUDA)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", default="1,4", help="CUDA batch sizes")
    parser.add_argument("--dtypes", default="none,bf16", help="CUDA precisions (run.amp values)")
    args = parser.parse_args()
    info = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    if args.device == "cpu":
        results = cpu_tiny(args.steps or 10, args.warmup)
    else:
        results = cuda_full(args.steps or 20, args.warmup, [int(b) for b in args.batches.split(",")],
                            args.dtypes.split(","))
    print(json.dumps({"benchmark": "train", "info": info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
