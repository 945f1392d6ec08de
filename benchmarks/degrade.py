"""Degradation and test-set build throughput on 1024 inputs; prints JSON.

degradation_img_per_s: the `official` preset alone (sample + apply, 1024 -> 512), one process, one cv2 thread.
build_img_per_s: a whole `bench testset build --task mfr` from a folder of 1024 PNG faces (decode, hash,
degrade, PNG-encode GT and LQ, journal, manifest), with 1 and 2 workers. Median of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import cv2
    import numpy as np
    from PIL import Image

    from bench.datasets import testset
    from bench.datasets.synthetic import synthetic_face
    from bench.degradations import get_preset

    cv2.setNumThreads(1)
    faces = [synthetic_face(i) for i in range(args.images)]
    preset = get_preset("official")
    params = [preset.sample(np.random.default_rng([0, i])) for i in range(args.images)]
    degrade_rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for img, p in zip(faces, params, strict=True):
            preset.apply(img, p)
        degrade_rates.append(args.images / (time.perf_counter() - start))

    work = Path(tempfile.mkdtemp(prefix="bench-degrade-"))
    try:
        source = work / "source"
        source.mkdir()
        for i, img in enumerate(faces):
            Image.fromarray(img).save(source / f"{i:05d}.png", compress_level=1)
        build_rates = {}
        for workers in (1, 2):
            rates = []
            for r in range(args.repeats):
                out = work / f"out-{workers}-{r}"
                start = time.perf_counter()
                testset.build("mfr", source, out, count=args.images, workers=workers, progress=False)
                rates.append(args.images / (time.perf_counter() - start))
                shutil.rmtree(out)
            build_rates[workers] = rates
    finally:
        shutil.rmtree(work)

    med = {w: statistics.median(v) for w, v in build_rates.items()}
    print(json.dumps({
        "benchmark": "degrade",
        "images": args.images,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "degradation_img_per_s": round(statistics.median(degrade_rates), 1),
        "degradation_img_per_s_runs": [round(x, 1) for x in degrade_rates],
        "build_img_per_s_1_worker": round(med[1], 1),
        "build_img_per_s_2_workers": round(med[2], 1),
        "build_runs": {str(w): [round(x, 1) for x in v] for w, v in build_rates.items()},
        "build_speedup_2_vs_1": round(med[2] / med[1], 2),
        "targets": {"degradation_img_per_s": ">= 40", "build_speedup_2_vs_1": ">= 1.6"},
    }, indent=1))


if __name__ == "__main__":
    main()
