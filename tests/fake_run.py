"""Build a small run folder by hand (the files `bench run` writes), for report and compare tests.

The values are made up but self-consistent: per-image values average to the result rows, so the
report's tables and plots have something real to show. Names may hold HTML special characters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from bench.experiment import validate
from bench.io import write_json, write_jsonl
from bench.store import slug


def _face(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.8 - 0.3 * y, 0.6 - 0.2 * x, 0.5 + 0.2 * x * y], -1)
    eyes = (((x - 0.35) ** 2 + (y - 0.44) ** 2) < 0.003) | (((x - 0.65) ** 2 + (y - 0.44) ** 2) < 0.003)
    mouth = (np.abs(y - 0.72) < 0.02) & (np.abs(x - 0.5) < 0.12)
    base[eyes | mouth] = 0.1
    noise = rng.normal(0, 0.03, base.shape)
    return (np.clip(base + noise, 0, 1) * 255).astype(np.uint8)


def make_run(root: Path, method_names=("Bicubic", "Panini-Net"), image_ids=("a", "b", "c"), table="table1",
             expected_file: Path | None = None, theta: bool = True, failure: bool = True, size: int = 64,
             skipped=()) -> Path:
    """`skipped`: methods recorded as skipped for missing weights (in the config, without results)."""
    rng = np.random.default_rng(0)
    run = root / "run"
    ts_dir = root / "testset"
    for sub in ("gt", "lq"):
        (ts_dir / sub).mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, image_id in enumerate(image_ids):
        gt = _face(rng, size)
        Image.fromarray(gt).save(ts_dir / "gt" / f"{image_id}.png")
        Image.fromarray(gt[::4, ::4]).save(ts_dir / "lq" / f"{image_id}.png")
        manifest.append({"id": image_id, "source": image_id,
                         "params": {"r": 10.0 + 20.0 * index, "sigma": 1.0 + index % 2, "noise_seed": index}})
    (ts_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    (ts_dir / "testset.json").write_text(json.dumps({"task": "mfr", "preset": "official", "preset_settings": {
        "name": "official", "sigma": [0.2, 10.0], "downsample": [10.0, 200.0], "jpeg_quality": [5, 50]}}))
    ts_id = "f" * 64
    config = {"experiment": {"name": "fake", "title": "Fake <run> & co", "table": table,
                             "metrics": ["psnr", "lpips"], "grid_images": len(image_ids)},
              "testsets": [{"name": "mfr<1>", "task": "mfr"}],
              "methods": [{"name": n, "method": "bicubic"} for n in (*method_names, *skipped)]}
    config = validate(config, "fake")
    results, per_image, analysis = [], [], []
    for k, name in enumerate(method_names):
        out_dir = run / "outputs" / slug(name) / ts_id
        out_dir.mkdir(parents=True, exist_ok=True)
        psnr = [20.0 + k + 0.1 * i for i in range(len(image_ids))]
        lpips = [0.40 - 0.01 * k + 0.001 * i for i in range(len(image_ids))]
        for i, image_id in enumerate(image_ids):
            Image.fromarray(_face(rng, size)).save(out_dir / f"{image_id}.png")
            per_image += [{"method": name, "testset": "mfr<1>", "testset_id": ts_id, "id": image_id,
                           "metric": "psnr", "condition": "", "value": psnr[i]},
                          {"method": name, "testset": "mfr<1>", "testset_id": ts_id, "id": image_id,
                           "metric": "lpips", "condition": "", "value": lpips[i]}]
        for metric, values, better in (("psnr", psnr, True), ("lpips", lpips, False)):
            mean = float(np.mean(values))
            results.append({"table": table, "method": name, "method_id": "bicubic", "testset": "mfr<1>",
                            "testset_id": ts_id, "metric": metric, "condition": "", "value": mean,
                            "n": len(values), "ci_low": mean - 0.05, "ci_high": mean + 0.05,
                            "higher_is_better": better, "protocol_id": "fake"})
    if theta:
        for r, base in ((16, 0.45), (32, 0.55), (64, 0.62), (128, 0.74)):
            values = [base + 0.01 * i for i in range(len(image_ids))]
            for image_id, v in zip(image_ids, values, strict=True):
                per_image.append({"method": method_names[-1], "testset": "mfr<1>", "testset_id": ts_id,
                                  "id": f"{image_id}_r{r:03d}", "metric": "theta", "condition": f"r={r}",
                                  "value": v})
            results.append({"table": "table4", "method": method_names[-1], "testset": "mfr<1>",
                            "testset_id": ts_id, "metric": "theta", "condition": f"r={r}",
                            "value": float(np.mean(values)), "n": len(values), "spread": 0.01,
                            "ci_low": base, "ci_high": base + 0.02, "higher_is_better": None})
            dis = run / "analysis" / "dissection"
            dis.mkdir(parents=True, exist_ok=True)
            files = {"X": f"../testset/lq/{image_ids[0]}.png"}
            for part in ("Y", "Y_GPB", "Y_IFE"):
                Image.fromarray(_face(rng, size)).save(dis / f"{image_ids[0]}_r{r}_{part}.png")
                files[part] = f"analysis/dissection/{image_ids[0]}_r{r}_{part}.png"
            analysis.append({"kind": "dissection", "method": method_names[-1], "testset": "mfr<1>",
                             "testset_id": ts_id, "id": f"{image_ids[0]}_r{r}", "source_id": image_ids[0],
                             "condition": f"r={r}", "theta": base, "files": files})
    failures = [{"method": "Broken <b>method</b>", "testset": "mfr<1>", "stage": "restore",
                 "error": "RuntimeError: boom <script>alert(1)</script>", "traceback": "Traceback ...\n"}] \
        if failure else []
    info = {"format": 1, "experiment": "fake", "status": "complete", "config": config, "config_hash": "x",
            "expected_file": str(expected_file) if expected_file else None,
            "provenance": {"git": {"commit": "0" * 40, "dirty": False}, "packages": {"torch": "2.x"},
                           "device": {"requested": "cpu", "platform": "test", "python": "3"},
                           "started": "2026-01-01T00:00:00Z", "argv": []},
            "seeds": {"experiment": 0, "testsets": {"mfr<1>": 0}},
            "testsets": {"mfr<1>": {"id": ts_id, "dir": str(ts_dir.resolve()), "task": "mfr", "preset": "official",
                                    "count": len(image_ids), "seed": 0, "source": "synthetic"}},
            "methods": {n: {"method": "bicubic", "status": "ok", "weights_hash": "ab" * 32, "params": 0,
                            "note": ""} for n in method_names}
            | {n: {"method": "gfpgan-v1.3", "status": "skipped", "params": None, "note": ""} for n in skipped},
            "failures": failures,
            "notes": [{"kind": "weights-missing", "subject": "GFP-GAN", "title": "weights not found: how to get them",
                       "message": "run `bench weights fetch gfpgan-v1.3`"}],
            "protocols": {"psnr": {"channel": "rgb"}}, "timings": {"restore": 1.0}, "finished": "now"}
    write_json(run / "run.json", info)
    write_jsonl(run / "results.jsonl", results)
    write_jsonl(run / "per_image.jsonl", per_image)
    write_jsonl(run / "analysis.jsonl", analysis)
    return run
