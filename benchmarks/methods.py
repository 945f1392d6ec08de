"""Forward time and peak memory of each method for one image: prints JSON.

    python benchmarks/methods.py                       # full-size networks on the CPU, and the GPU if present
    python benchmarks/methods.py --device cuda         # GPU only (peak = torch.cuda.max_memory_allocated)
    python benchmarks/methods.py --config tiny         # the tiny test configurations (seconds)

Each method runs in its own process (so CPU peak RSS is its own), with seeded random weights
(`random_init_seed=0`; timing does not depend on the values, no checkpoint download needed):
`restore` on one LQ image of the method's input size, `--warmup` untimed calls, then the median of
`--repeat` timed calls. CPU memory: `model_rss_mb` = RSS growth from building the method (weights
and buffers), `peak_rss_mb` = the highest RSS during the timed calls minus the RSS just before them
(Linux: the high-water mark is reset through /proc/self/clear_refs), i.e. the forward's own peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("bicubic", "gfpgan-v1.3", "gpen-bfr-512", "glean-ffhq-16x", "psp-celebs-sr", "panini-mfr", "panini-sr16")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, device: str, config: str, warmup: int, repeat: int) -> dict:
    import torch

    from bench.methods import create_method

    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    before = rss_mb()
    options = {} if name == "bicubic" else {"random_init_seed": 0, "config": config if config == "tiny" else None}
    method = create_method(name, device=device, **options)
    in_size = method.spec.in_size or 64
    lq = torch.rand(1, 3, in_size, in_size, generator=torch.Generator().manual_seed(0)).to(device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        method.restore(lq)
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    built = rss_mb()
    exact_peak = reset_peak_rss()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = method.restore(lq)
        sync()
        times.append(time.perf_counter() - start)
    row = {
        "in_size": in_size,
        "out_size": out.shape[-1],
        "params": sum(p.numel() for p in method.model.parameters()) if method.model is not None else 0,
        "forward_s": statistics.median(times),
        "forward_s_all": [round(t, 4) for t in times],
    }
    if device.startswith("cuda"):
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        row["model_rss_mb"] = built - before
        row["peak_rss_mb"] = peak_rss_mb() - built
        if not exact_peak:
            row["peak_rss_note"] = "high-water mark could not be reset: includes building the method"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda[:N], or auto = cpu and, if present, cuda")
    parser.add_argument("--config", choices=("full", "tiny"), default="full")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one method in this process
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.config, args.warmup, args.repeat)))
        return 0

    import torch

    devices = args.device.split(",") if args.device != "auto" else ["cpu"] + ["cuda"] * torch.cuda.is_available()
    runs = {}
    for device in devices:
        results = {}
        for name in args.methods.split(","):
            command = [sys.executable, __file__, "--one", name, "--device", device, "--config", args.config,
                       "--warmup", str(args.warmup), "--repeat", str(args.repeat)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines()
                results[name] = {"error": lines[-1] if lines else f"exit status {done.returncode}"}
            else:
                results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
        runs[device] = {"device_name": name, "methods": results}
    report = {
        "config": args.config,
        "weights": "seeded random (official architecture)" if args.config == "full" else "seeded random (tiny)",
        "cpu_threads": args.threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1min": os.getloadavg()[0],
        "devices": runs,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
