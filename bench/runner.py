"""`bench run`: test sets -> methods -> PNG outputs -> metrics -> results files, resumable.

Work is cached at three levels, each keyed so that stale work is never reused:
- test sets by their build request (task, preset, seed, count, source); their id is the manifest hash;
- outputs in `outputs/<method>/<testset_id>/<id>.png`, valid for the weights hash and options in
  that folder's `.method.json` (a different hash clears the folder);
- scores and analyses in `scores/<method>/<testset_id>.json`, keyed by the output key and the metric
  configuration.
A killed run loses at most the batch in flight; `--resume` redoes nothing that finished.
One method failing (at creation, restoration, scoring or analysis) is recorded in run.json and the
others still run. Under torchrun every rank restores and scores a contiguous shard of each test
set; metric states are merged on rank 0, which alone writes the result files.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.distributed import Dist
from bench.errors import BenchError
from bench.experiment import Experiment
from bench.io import write_png
from bench.methods.imageio import quantize_uint8, read_rgb8, read_uint8_batch
from bench.store import (
    PER_IMAGE_FILE,
    RESULTS_FILE,
    RUN_FILE,
    provenance,
    read_json,
    slug,
    write_json,
    write_jsonl,
)

FORMAT = 1
ANALYSIS_FILE = "analysis.jsonl"


# ----------------------------------------------------------------------------- small helpers

def to_uint8(batch: torch.Tensor, quantize: str = "round") -> np.ndarray:
    """float NCHW in [0,1] -> uint8 NHWC with the method's rule (`Method.quantize`, default rounding)."""
    return quantize_uint8(batch, quantize).permute(0, 2, 3, 1).cpu().numpy()


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def resize(batch: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """`batch` at `size` with torch's `mode` (antialiased when shrinking); unchanged if sizes match or mode ''."""
    if not mode or tuple(batch.shape[-2:]) == tuple(size):
        return batch
    import torch.nn.functional as F

    if mode == "area":
        return F.interpolate(batch, size=size, mode="area").clamp_(0, 1)
    shrink = size[0] < batch.shape[-2]
    return F.interpolate(batch, size=size, mode=mode, align_corners=False, antialias=shrink).clamp_(0, 1)


def hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def weights_hash(method) -> str:
    """sha256 over the loaded parameters and buffers (whatever file or seed they came from) and the protocol."""
    digest = hashlib.sha256()
    model = getattr(method, "model", None)
    if isinstance(model, torch.nn.Module):
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(getattr(method, "protocol", {}), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def is_missing_weights(exc: BaseException) -> bool:
    """A BenchError raised because a weights file is absent (the weights registry's error)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).lower()
    return bool(names & {"MissingWeightsError", "MissingWeights"}) or (
        isinstance(exc, (BenchError, FileNotFoundError)) and "weights" in text and
        any(word in text for word in ("not found", "missing", "fetch", "expected at", "no such file")))


@dataclass
class TestSet:
    name: str
    dir: Path
    info: dict
    rows: list[dict]

    @property
    def id(self) -> str:
        return self.info["testset_id"]

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]

    def lq(self, image_id: str) -> Path:
        return self.dir / "lq" / f"{image_id}.png"

    def gt(self, image_id: str) -> Path:
        return self.dir / "gt" / f"{image_id}.png"


@dataclass
class Failure:
    method: str
    testset: str
    stage: str
    error: str
    traceback: str = ""


@dataclass
class RunState:
    """What the run writes at the end (and after every method, so a crash keeps what finished)."""

    info: dict
    results: list[dict] = field(default_factory=list)
    per_image: list[dict] = field(default_factory=list)
    analysis: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=lambda: {"testsets": 0.0, "restore": 0.0, "scoring": 0.0,
                                                   "analysis": 0.0})


# ----------------------------------------------------------------------------- the runner

class Runner:
    def __init__(self, exp: Experiment, out: str | Path, device: str = "cpu", resume: bool = False,
                 testset_root: str | Path | None = None, progress: bool | None = None, log=print):
        self.exp = exp
        self.cfg = exp.config
        self.out = Path(out)
        self.dist = Dist.from_env(device)
        self.device = self.dist.device
        self.resume = resume
        self.testset_root = Path(testset_root) if testset_root else self.out / "testsets"
        self.progress = progress
        self.log = log if self.dist.main else (lambda *a, **k: None)
        self.batch_size = self.cfg["experiment"]["batch_size"]
        self.seed = self.cfg["experiment"]["seed"]
        self._metric_cache: dict[str, Any] = {}

    # -- run folder --------------------------------------------------------------------------
    def _open(self) -> RunState:
        path = self.out / RUN_FILE
        if self.dist.main:
            if path.exists():
                old = read_json(path)
                if not self.resume:
                    raise BenchError(f"{self.out} already holds a run ({old.get('status')}); pass --resume to "
                                     "continue it, or choose another --out")
                if old.get("config_hash") != self.exp.config_hash():
                    raise BenchError(f"{self.out} holds a run of a different experiment config; --resume needs "
                                     "the same file and --set values, or choose another --out")
            self.out.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        info = {
            "format": FORMAT, "experiment": self.exp.name, "status": "running",
            "config": self.cfg, "config_hash": self.exp.config_hash(), "source": self.exp.source,
            "base_dir": str(self.exp.base_dir),
            "expected_file": str(self.exp.expected_file().resolve()) if self.exp.expected_file() else None,
            "provenance": provenance(self.device), "world_size": self.dist.world,
            "seeds": {"experiment": self.seed, "testsets": {t["name"]: t["seed"] for t in self.cfg["testsets"]}},
            "testsets": {}, "methods": {}, "failures": [], "notes": [], "protocols": {}, "timings": {},
            "resumed": self.resume and path.exists(), "finished": None,
        }
        state = RunState(info)
        self._save(state)
        return state

    def _save(self, state: RunState, final: bool = False) -> None:
        if not self.dist.main:
            return
        state.info["timings"] = {k: round(v, 3) for k, v in state.timings.items()}
        if final:
            state.info["status"] = "complete" if not state.info["failures"] else "complete-with-failures"
            state.info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_jsonl(self.out / RESULTS_FILE, state.results)
        write_jsonl(self.out / PER_IMAGE_FILE, state.per_image)
        write_jsonl(self.out / ANALYSIS_FILE, state.analysis)
        write_json(self.out / RUN_FILE, state.info)

    # -- test sets ---------------------------------------------------------------------------
    def _testset(self, spec: dict) -> TestSet:
        from bench.datasets.testset import build, read_testset

        if spec["path"]:
            folder = self.exp.path(spec["path"], f"testsets.{spec['name']}.path")
            info, rows = read_testset(folder)
            return TestSet(spec["name"], folder, info, rows)
        source = spec["source"]
        if source != "synthetic" and not source.startswith("synthetic:"):
            source = str(self.exp.path(source, f"testsets.{spec['name']}.source"))
        request = {k: spec[k] for k in ("task", "preset", "seed", "count")} | {"source": source}
        folder = self.testset_root / f"{slug(spec['name'])}-{hash_json(request)[:12]}"
        if self.dist.main:
            build(spec["task"], source, folder, count=spec["count"], seed=spec["seed"], preset=spec["preset"] or None,
                  workers=spec["workers"], progress=self.progress)
        self.dist.barrier()
        info, rows = read_testset(folder)
        return TestSet(spec["name"], folder, info, rows)

    # -- methods -----------------------------------------------------------------------------
    def _create(self, spec: dict):
        from bench.methods import create_method

        weights: Any = spec["weights"] or None
        if weights:
            weights = str(self.exp.path(weights, f"methods.{spec['name']}.weights"))
        return create_method(spec["method"], weights=weights, device=self.device, **spec["options"])

    def _restore(self, method, spec: dict, ts: TestSet, key: str) -> Path:
        folder = self.out / "outputs" / slug(spec["name"]) / ts.id
        meta = {"method": spec["method"], "options": spec["options"], "testset_id": ts.id, "key": key}
        if self.dist.main:
            meta_path = folder / ".method.json"
            if meta_path.exists() and read_json(meta_path) != meta:
                shutil.rmtree(folder)  # outputs of other weights/options: never mix them with these
                self.log(f"  {spec['name']}: weights or options changed, cleared {folder}")
            folder.mkdir(parents=True, exist_ok=True)
            write_json(meta_path, meta)
        self.dist.barrier()
        mine = self.dist.shard(ts.ids)
        todo = [i for i in mine if not (folder / f"{i}.png").exists()]
        if todo and getattr(method, "works_on_folders", False):
            method.restore_folder(ts.dir / "lq", folder, ids=todo, batch_size=self.batch_size)
            return folder
        gt_size = None
        for chunk in self._bar(list(batches(todo, self.batch_size)), f"{spec['name']} on {ts.name}"):
            if gt_size is None:
                gt_size = read_rgb8(ts.gt(chunk[0])).shape[:2]
            lq = self._input(method, spec, read_uint8_batch([ts.lq(i) for i in chunk]).float().div_(255))
            out = resize(method.restore(lq), tuple(gt_size), spec["resize_output"])
            if tuple(out.shape[-2:]) != tuple(gt_size):
                raise BenchError(
                    f"method '{spec['method']}' returned {out.shape[-2]}x{out.shape[-1]} images but the GT of test "
                    f"set '{ts.name}' is {gt_size[0]}x{gt_size[1]}; give it options that match the test set's "
                    "output size (e.g. out_size) or use a test set of its task")
            for image_id, image in zip(chunk, to_uint8(out, getattr(method, "quantize", "round")), strict=True):
                write_png(folder / f"{image_id}.png", image)
        return folder

    def _input(self, method, spec: dict, lq: torch.Tensor) -> torch.Tensor:
        """The LQ batch at the method's input size when the experiment asks for resizing."""
        size = getattr(method.spec, "in_size", None)
        return resize(lq, (size, size), spec["resize_input"]) if size else lq

    def _bar(self, items: list, desc: str):
        from tqdm import tqdm

        disable = (None if self.progress is None else not self.progress) if self.dist.main else True
        return tqdm(items, desc=desc, unit="batch", disable=disable, leave=False)

    # -- scoring -----------------------------------------------------------------------------
    def _metrics(self, state: RunState) -> tuple[list[str], dict]:
        """Metric names this run can score, with notes for optional metrics that are unavailable."""
        names = list(self.cfg["experiment"]["metrics"])
        optional = [m for m in self.cfg["experiment"]["optional_metrics"] if m not in names]
        usable = []
        for name in names + optional:
            try:
                for metric in self._make_metrics([name]):
                    state.info["protocols"][name] = metric.protocol
                usable.append(name)
            except Exception as exc:  # noqa: BLE001 - an optional metric is reported, the run goes on
                if name in names:
                    raise
                state.info["notes"].append({
                    "kind": "weights-missing" if is_missing_weights(exc) else "metric-unavailable",
                    "subject": name.upper(), "metric": name, "title": "weights not found: how to get them"
                    if is_missing_weights(exc) else "metric unavailable",
                    "message": f"{exc}. Scores for {name.upper()} are left out of this run."})
                self.log(f"  metric {name}: not available ({exc})")
        return usable, state.info["protocols"]

    def _make_metrics(self, names: list[str]) -> list:
        """Metric objects for `names`, built once per run (weights load once) and reset for each use."""
        made = []
        wanted = [n for n in names if not (n == "kid" and "fid" in names)]  # one Inception pass serves both
        for name in wanted:
            options = dict(self.cfg["metric_options"].get(name, {}))
            if name == "fid" and "kid" in names:
                options.setdefault("outputs", ("fid", "kid"))
            key = hash_json([name, options])
            metric = self._metric_cache.get(key)
            if metric is None:
                metric = self._metric_cache[key] = self._create_metric(name, options)
            metric.reset()
            made.append(metric)
        return made

    def _create_metric(self, name: str, options: dict):
        import importlib
        import inspect

        from bench import metrics as registry

        params = {}
        if name in getattr(registry, "METRICS", {}):
            module, _, cls = registry.METRICS[name][0].partition(":")
            params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        extra = {"device": self.device, "ci_resamples": self.cfg["experiment"]["bootstrap"], "ci_seed": self.seed}
        for key, value in extra.items():  # only the settings this metric takes (PSNR has no device)
            if key in params or (accepts_any and key.startswith("ci_")):
                options.setdefault(key, value)
        return registry.create_metric(name, **options)

    def _score(self, spec: dict, ts: TestSet, folder: Path, names: list[str]) -> tuple[list[dict], list[dict]]:
        metrics = self._make_metrics(names)
        mine = self.dist.shard(ts.ids)
        for chunk in self._bar(list(batches(mine, self.batch_size)), f"scoring {spec['name']} on {ts.name}"):
            pred = read_uint8_batch([folder / f"{i}.png" for i in chunk])
            gt = read_uint8_batch([ts.gt(i) for i in chunk])
            for metric in metrics:
                metric.update(pred, gt, ids=chunk)
        states = self.dist.gather([m.state_dict() for m in metrics])
        if not self.dist.main:
            return [], []
        if self.dist.enabled:
            metrics = self._make_metrics(names)  # the same objects, reset: merge every rank's state in rank order
            for rank_states in states:
                for metric, rank_state in zip(metrics, rank_states, strict=True):
                    metric.merge(rank_state)
        rows, per_image = [], []
        for metric in metrics:
            better = getattr(metric, "higher_is_better", None)
            for row in metric.compute():
                row.setdefault("higher_is_better", _better(row["metric"], better))
                rows.append(row)
            if hasattr(metric, "per_image"):
                per_image += metric.per_image()
        return rows, per_image

    # -- analyses ----------------------------------------------------------------------------
    def _analyze(self, method):
        if not hasattr(method, "analyze"):
            raise BenchError(f"method '{method.spec.name}' has no analyze() hook: the θ and dissection analyses "
                             "need a Panini-Net with DAFI fusion (panini-mfr / panini-sr16)")
        return method.analyze

    def _condition(self, ts: TestSet, row: dict, spec_ts: dict) -> str:
        key = spec_ts["group_by"]
        if not key:
            return ""
        params = row.get("params", {})
        value = params.get(key, row.get(key))
        if value is None:
            raise BenchError(f"test set '{ts.name}': group_by = {key!r} but manifest row {row['id']} has no such "
                             f"parameter (parameters: {', '.join(sorted(params))})")
        return f"{key}={value:g}" if isinstance(value, (int, float)) else f"{key}={value}"

    def _theta(self, method, spec: dict, ts: TestSet, spec_ts: dict) -> list[dict]:
        analyze = self._analyze(method)
        by_id = {row["id"]: row for row in ts.rows}
        out = []
        for chunk in self._bar(list(batches(self.dist.shard(ts.ids), self.batch_size)), f"θ {spec['name']}"):
            lq = self._input(method, spec, read_uint8_batch([ts.lq(i) for i in chunk]).float().div_(255))
            result = analyze(lq)
            if result.theta is None:
                raise BenchError(f"{spec['method']}: the model gives no masks (fusion without DAFI has no θ)")
            theta = result.theta.float().cpu().numpy()
            for image_id, blocks in zip(chunk, theta, strict=True):
                condition = self._condition(ts, by_id[image_id], spec_ts)
                out.append({"id": image_id, "metric": "theta", "condition": condition,
                            "value": float(blocks[-1]), "theta_blocks": [float(b) for b in blocks]})
        return [row for rank_rows in self.dist.gather(out) for row in rank_rows]

    def _dissection(self, method, spec: dict, ts: TestSet, spec_ts: dict) -> list[dict]:
        analyze = self._analyze(method)
        limit = self.cfg["report"]["dissection_images"]
        sources: list[str] = []
        for row in ts.rows:
            if row.get("source") not in sources:
                sources.append(row.get("source"))
        chosen = set(sources[:limit])
        rows = [row for row in ts.rows if row.get("source") in chosen]
        folder = self.out / "analysis" / slug(spec["name"]) / ts.id / "dissection"
        out = []
        for row in self.dist.shard(rows):
            lq = self._input(method, spec, read_uint8_batch([ts.lq(row["id"])]).float().div_(255))
            files = {"X": _rel(ts.lq(row["id"]), self.out)}
            theta = None
            for part, mode in (("Y", None), ("Y_GPB", "gpb"), ("Y_IFE", "ife")):
                result = analyze(lq, dissection=mode)
                if mode is None and result.theta is not None:
                    theta = float(result.theta[0, -1])
                path = folder / f"{row['id']}_{part}.png"
                write_png(path, to_uint8(result.image)[0])
                files[part] = _rel(path, self.out)
            out.append({"kind": "dissection", "method": spec["name"], "testset": ts.name, "testset_id": ts.id,
                        "id": row["id"], "source_id": str(row.get("source")),
                        "condition": self._condition(ts, row, spec_ts), "theta": theta, "files": files})
        return [r for rank_rows in self.dist.gather(out) for r in rank_rows]

    # -- one method on one test set ----------------------------------------------------------
    def _pair(self, method, spec: dict, ts: TestSet, spec_ts: dict, key: str, metric_names: list[str],
              state: RunState) -> None:
        cache = self.out / "scores" / slug(spec["name"]) / f"{ts.id}.json"
        cache_key = hash_json({"key": key, "metrics": metric_names, "metric_options": self.cfg["metric_options"],
                               "bootstrap": self.cfg["experiment"]["bootstrap"], "seed": self.seed,
                               "analysis": spec["analysis"], "restore": spec["restore"],
                               "dissection_images": self.cfg["report"]["dissection_images"],
                               "group_by": spec_ts["group_by"], "world": "any"})
        cached = None
        if self.dist.main and cache.exists():
            data = read_json(cache)
            cached = data if data.get("cache_key") == cache_key else None
        cached = self.dist.broadcast(cached)
        if cached is None:
            rows, per_image, analysis = [], [], []
            if spec["restore"]:
                start = time.perf_counter()
                folder = self._guard(spec, ts, "restore", lambda: self._restore(method, spec, ts, key))
                state.timings["restore"] += time.perf_counter() - start
                if metric_names:
                    start = time.perf_counter()
                    rows, per_image = self._guard(spec, ts, "scoring",
                                                  lambda: self._score(spec, ts, folder, metric_names))
                    state.timings["scoring"] += time.perf_counter() - start
            start = time.perf_counter()
            if "theta" in spec["analysis"]:
                theta_rows = self._guard(spec, ts, "theta analysis", lambda: self._theta(method, spec, ts, spec_ts))
                per_image += theta_rows
                rows += _theta_summary(theta_rows, self.cfg["experiment"]["bootstrap"], self.seed)
            if "dissection" in spec["analysis"]:
                analysis += self._guard(spec, ts, "dissection", lambda: self._dissection(method, spec, ts, spec_ts))
            if "params" in spec["analysis"]:
                count = state.info["methods"][spec["name"]].get("params")
                if count is not None:
                    rows.append({"metric": "params_M", "value": count / 1e6, "n": None, "higher_is_better": None,
                                 "protocol_id": "parameter-count"})
            state.timings["analysis"] += time.perf_counter() - start
            cached = {"cache_key": cache_key, "rows": rows, "per_image": per_image, "analysis": analysis}
            if self.dist.main:
                write_json(cache, cached)
        else:
            self.log(f"  {spec['name']} on {ts.name}: finished in an earlier run, reused")
        common = {"table": self.cfg["experiment"]["table"], "method": spec["name"], "method_id": spec["method"],
                  "testset": ts.name, "testset_id": ts.id, "task": ts.info.get("task"),
                  "weights_hash": state.info["methods"][spec["name"]].get("weights_hash")}
        for row in cached["rows"]:
            state.results.append({**common, "condition": row.pop("condition", ""), **row})
        for row in cached["per_image"]:
            state.per_image.append({"method": spec["name"], "testset": ts.name, "testset_id": ts.id,
                                    "condition": row.pop("condition", ""), **row})
        state.analysis += cached["analysis"]

    def _guard(self, spec: dict, ts: TestSet, stage: str, work):
        """Run `work` on every rank; if any rank fails, every rank raises the same _StageFailed."""
        error = None
        try:
            value = work()
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on with the next method
            value = None
            error = Failure(spec["name"], ts.name, stage, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        errors = [e for e in self.dist.gather(error) if e is not None]
        if errors:
            raise _StageFailed(errors[0])
        return value

    # -- the whole run -----------------------------------------------------------------------
    def run(self) -> Path:
        state = self._open()
        try:
            self._run(state)
        except BenchError as exc:  # a problem of the whole run (e.g. a metric's weights): say so in run.json
            state.info["status"], state.info["error"] = "failed", str(exc)
            self._save(state)
            raise
        finally:
            self.dist.close()
        return self.out

    def _run(self, state: RunState) -> None:
        metric_names, _ = self._metrics(state)  # first: a missing metric weight stops the run before any work
        start = time.perf_counter()
        testsets = {}
        for spec_ts in self.cfg["testsets"]:
            self.log(f"test set {spec_ts['name']}: {spec_ts['task']}, {spec_ts['count']} images")
            ts = self._testset(spec_ts)
            testsets[ts.name] = (ts, spec_ts)
            state.info["testsets"][ts.name] = {
                "id": ts.id, "dir": str(ts.dir.resolve()), "task": ts.info.get("task"),
                "preset": ts.info.get("preset"), "count": len(ts.rows), "seed": spec_ts["seed"],
                "source": spec_ts["source"] if not spec_ts["path"] else spec_ts["path"]}
        state.timings["testsets"] += time.perf_counter() - start
        self._save(state)
        for spec in self.cfg["methods"]:
            self._method(spec, testsets, metric_names, state)
            self._save(state)
        self._save(state, final=True)

    def _method(self, spec: dict, testsets: dict, metric_names: list[str], state: RunState) -> None:
        entry = state.info["methods"][spec["name"]] = {
            "method": spec["method"], "weights": spec["weights"], "options": spec["options"], "note": spec["note"],
            "status": "running", "weights_hash": None, "params": None}
        self.log(f"method {spec['name']} ({spec['method']})")
        method = None
        try:
            start = time.perf_counter()
            method = self._create(spec)
            entry["weights_hash"] = weights_hash(method)
            model = getattr(method, "model", None)
            if isinstance(model, torch.nn.Module):
                entry["params"] = sum(p.numel() for p in model.parameters())
            entry["protocol"] = getattr(method, "protocol", {})
            entry["spec"] = {k: getattr(method.spec, k, None) for k in ("name", "task", "in_size", "out_size",
                                                                        "licence")}
            entry["create_s"] = round(time.perf_counter() - start, 3)
        except Exception as exc:  # noqa: BLE001 - recorded; other methods still run
            if spec["optional"] and is_missing_weights(exc):
                entry["status"] = "skipped"
                state.info["notes"].append({"kind": "weights-missing", "subject": spec["name"], "method": spec["name"],
                                            "title": "weights not found: how to get them", "message": str(exc)})
                self.log(f"  skipped: weights not found ({exc})")
            else:
                entry["status"] = "failed"
                state.info["failures"].append(vars(Failure(spec["name"], "", "creation", f"{type(exc).__name__}: {exc}",
                                                           traceback.format_exc())))
                self.log(f"  FAILED to create: {exc}")
            return
        key = hash_json({"weights_hash": entry["weights_hash"], "options": spec["options"], "method": spec["method"],
                         "resize": [spec["resize_input"], spec["resize_output"]]})
        failed = False
        for name, (ts, spec_ts) in testsets.items():
            if spec["testsets"] and name not in spec["testsets"]:
                continue
            try:
                self._pair(method, spec, ts, spec_ts, key, metric_names if spec["restore"] else [], state)
            except _StageFailed as exc:
                failed = True
                state.info["failures"].append(vars(exc.failure))
                self.log(f"  FAILED on {name} during {exc.failure.stage}: {exc.failure.error}")
        entry["status"] = "failed" if failed else "ok"
        del method
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


class _StageFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.error)
        self.failure = failure


def _rel(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), base.resolve())


def _better(metric: str, declared: bool | None) -> bool | None:
    if metric in ("fid", "kid", "lpips"):
        return False
    if metric in ("psnr", "ssim"):
        return True
    return declared


def _theta_summary(rows: list[dict], resamples: int, seed: int) -> list[dict]:
    """Mean θ per condition with its spread (sd over images) and a seeded bootstrap interval."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row["condition"], []).append(row["value"])
    out = []
    for condition, values in groups.items():
        array = np.asarray(values, dtype=np.float64)
        low = high = float(array.mean())
        if array.size > 1 and resamples > 0:
            rng = np.random.default_rng([seed, 7])
            means = array[rng.integers(0, array.size, size=(resamples, array.size))].mean(axis=1)
            low, high = (float(v) for v in np.quantile(means, [0.025, 0.975]))
        out.append({"metric": "theta", "condition": condition, "value": float(array.mean()), "n": int(array.size),
                    "spread": float(array.std(ddof=1)) if array.size > 1 else 0.0, "ci_low": low, "ci_high": high,
                    "ci_level": 0.95, "higher_is_better": None,
                    "protocol_id": "theta-dafi5-channel-mean", "min": float(array.min()), "max": float(array.max())})
    out.sort(key=lambda r: _number(r["condition"]))
    return out


def _number(condition: str) -> float:
    try:
        return float(condition.partition("=")[2])
    except ValueError:
        return math.inf


def run_experiment(exp: Experiment, out: str | Path, **options) -> Path:
    return Runner(exp, out, **options).run()
