"""Test-set build speed per registered preset: where each image's time goes, and what workers gain; prints JSON.

For every preset in the registry (so new presets are included automatically), on a folder of 1024 PNG faces:
- `stages_ms_per_image`: one single-process pass of the builder's own per-image function with each step
  timed (decode, hash, every degradation op the preset calls, PNG encode of GT and LQ, atomic write);
- `plain_loop` / `build_1_worker` / `build_2_workers`: img/s of a plain single-process loop of exactly
  the same per-image work (no pool, no journal, no manifest), and of whole `bench testset build` runs.
  The three run side by side in each repeat (interleaved, so machine load hits them alike); medians,
  every run, and the ratios per repeat are reported so the noise is visible.
One cv2 thread per process everywhere (as the builder does).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# Per-image steps of bench.datasets.testset that are timed, by the name the builder imports them under.
_BUILDER_STEPS = {
    "decode_rgb8": "decode",
    "sha256_bytes": "hash",
    "encode_png": "png_encode",
    "atomic_write_bytes": "write",
}
# Helpers in degradations/ops.py that are not pixel work.
_OPS_NOT_STEPS = {"check_image", "blur_kernel_size", "downsampled_size"}


class StageTimer:
    """Wall time per named step; a step called from inside another timed step counts to the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    label = name
                    if name == "png_encode":  # GT and LQ encodes differ a lot in size: keep them apart
                        label = f"png_encode_{args[0].shape[0]}px"
                    self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        return timed


@contextlib.contextmanager
def instrumented(timer: StageTimer):
    """Replace the builder's steps and every degradation op with timed versions, then restore them."""
    import inspect

    from bench.datasets import testset
    from bench.degradations import ops

    targets = [(testset, attr, label) for attr, label in _BUILDER_STEPS.items()]
    targets += [
        (ops, name, name)
        for name, fn in vars(ops).items()
        if inspect.isfunction(fn) and fn.__module__ == ops.__name__
        and not name.startswith("_") and name not in _OPS_NOT_STEPS
    ]
    originals = [(module, attr, getattr(module, attr)) for module, attr, _ in targets]
    try:
        for module, attr, label in targets:
            setattr(module, attr, timer.wrap(label, getattr(module, attr)))
        yield
    finally:
        for module, attr, fn in originals:
            setattr(module, attr, fn)


def jobs_for(preset_name: str, source: Path, out: Path, count: int) -> list:
    """The builder's own per-image jobs for `count` images of `source` with a registered preset."""
    from bench.datasets import testset
    from bench.degradations import get_preset

    preset = get_preset(preset_name)
    items = testset.choose_items(testset.resolve_source(source, count), count, seed=0)
    return [testset._Job(item, preset.task, preset, 0, str(out), False, False) for item in items]


def plain_loop(jobs: list) -> None:
    """The same per-image work as a build, one process, no pool/journal/manifest."""
    from bench.datasets import testset

    for sub in ("gt", "lq"):
        Path(jobs[0].out, sub).mkdir(parents=True, exist_ok=True)
    for job in jobs:
        testset._process(job)


def stage_breakdown(jobs: list) -> dict:
    timer = StageTimer()
    start = time.perf_counter()
    with instrumented(timer):
        plain_loop(jobs)
    total = time.perf_counter() - start
    timer.seconds["other"] = max(0.0, total - sum(timer.seconds.values()))
    n = len(jobs)
    return {
        "total_ms_per_image": round(1000 * total / n, 1),
        "stages_ms_per_image": {k: round(1000 * v / n, 1) for k, v in sorted(timer.seconds.items())},
        "stages_share": {k: round(v / total, 3) for k, v in sorted(timer.seconds.items(), key=lambda kv: -kv[1])},
    }


def compare_builds(preset_name: str, task: str, source: Path, work: Path, count: int, repeats: int) -> dict:
    from bench.datasets import testset

    rates: dict[str, list[float]] = {"plain_loop": [], "build_1_worker": [], "build_2_workers": []}
    for r in range(repeats):
        for mode in rates:
            out = work / f"{preset_name}-{mode}-{r}"
            start = time.perf_counter()
            if mode == "plain_loop":
                plain_loop(jobs_for(preset_name, source, out, count))
            else:
                workers = 1 if mode == "build_1_worker" else 2
                testset.build(task, source, out, count=count, preset=preset_name, workers=workers, progress=False)
            rates[mode].append(count / (time.perf_counter() - start))
            shutil.rmtree(out)
    med = {mode: statistics.median(v) for mode, v in rates.items()}
    ratios = [w2 / p for w2, p in zip(rates["build_2_workers"], rates["plain_loop"], strict=True)]
    return {
        **{f"{mode}_img_per_s": round(v, 2) for mode, v in med.items()},
        "runs_img_per_s": {mode: [round(x, 2) for x in v] for mode, v in rates.items()},
        "speedup_2_workers_vs_plain_loop": round(med["build_2_workers"] / med["plain_loop"], 2),
        "speedup_2_workers_vs_plain_loop_per_repeat": [round(x, 2) for x in ratios],
        "speedup_1_worker_vs_plain_loop": round(med["build_1_worker"] / med["plain_loop"], 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="source faces (theta makes 4 LQ per face)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="*", help="registered preset names (default: all)")
    args = parser.parse_args(argv)

    import cv2
    from PIL import Image

    from bench.datasets.synthetic import synthetic_face
    from bench.degradations import PRESETS, get_preset

    cv2.setNumThreads(1)
    names = args.presets or list(PRESETS)
    result = {
        "benchmark": "degrade",
        "images": args.images,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "presets": {},
    }
    work = Path(tempfile.mkdtemp(prefix="bench-degrade-"))
    try:
        source = work / "source"
        source.mkdir()
        for i in range(args.images):
            Image.fromarray(synthetic_face(i)).save(source / f"{i:05d}.png", compress_level=1)
        for name in names:
            preset = get_preset(name)
            entry = {"task": preset.task, "lq_per_image": len(preset.variants())}
            entry.update(stage_breakdown(jobs_for(name, source, work / f"{name}-stages", args.images)))
            shutil.rmtree(work / f"{name}-stages")
            entry.update(compare_builds(name, preset.task, source, work, args.images, args.repeats))
            result["presets"][name] = entry
    finally:
        shutil.rmtree(work)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["target"] = {"speedup_2_workers_vs_plain_loop": ">= 1.6 on an idle 2-core machine"}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
