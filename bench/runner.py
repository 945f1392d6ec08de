"""`bench run`: test sets -> methods -> PNG outputs -> metrics -> results files, resumable.

This module orchestrates only: `bench.outputs` runs a method over images, `bench.scoring` builds
and merges the metrics, `bench.analyses` does θ, dissection and parameter counts. The experiment
arrives typed (`bench.experiment.ExperimentConfig`); run.json stores it as plain data.

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

import contextlib
import hashlib
import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import analyses, runfolder
from bench.by_degradation import write_by_degradation
from bench.claims import save_features
from bench.distributed import Dist
from bench.errors import BenchError, MissingWeightsError, describe_os_error
from bench.experiment import Experiment, MethodConfig, TestSetSpec
from bench.io import read_json, read_uint8_batch, write_json, write_jsonl
from bench.locks import folder_lock
from bench.outputs import batches, create_for_run, load_lq, registry_files, restore_images, weights_hash
from bench.scoring import RunMetrics
from bench.store import PER_IMAGE_FILE, RESULTS_FILE, RUN_FILE, provenance, slug

FORMAT = 1
ANALYSIS_FILE = "analysis.jsonl"


# ----------------------------------------------------------------------------- small helpers

def hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


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
                 testset_root: str | Path | None = None, progress: bool | None = None, log=print,
                 overwrite: bool = False, metric_registry=None):
        self.exp = exp
        self.settings = exp.spec.experiment
        self.out = Path(out)
        self.dist = Dist.from_env(device)
        self.device = self.dist.device
        self.resume = resume
        self.overwrite = overwrite
        self.testset_root = Path(testset_root) if testset_root else self.out / "testsets"
        self.progress = progress
        self.log = log if self.dist.main else (lambda *a, **k: None)
        self.batch_size = self.settings.batch_size
        self.seed = self.settings.seed
        self.metrics = RunMetrics(exp.spec, self.device, self.log, metric_registry)

    # -- run folder --------------------------------------------------------------------------
    def _open(self) -> RunState:
        resumed = False
        if self.dist.main:
            resumed = runfolder.prepare(self.out, self.exp.config_hash(), self.resume, self.overwrite)
            for stale in runfolder.remove_stale_temporaries(self.out):
                self.log(f"removed {stale} (left by an interrupted run)")
        self.dist.barrier()
        expected = self.exp.expected_file()
        info = {
            "format": FORMAT, "experiment": self.exp.name, "status": "running",
            "config": self.exp.config, "config_hash": self.exp.config_hash(), "source": self.exp.source,
            "base_dir": str(self.exp.base_dir), "expected_file": str(expected.resolve()) if expected else None,
            "provenance": provenance(self.device), "world_size": self.dist.world,
            "seeds": {"experiment": self.seed, "testsets": {t.name: t.seed for t in self.exp.spec.testsets}},
            "testsets": {}, "methods": {}, "failures": [], "notes": [], "protocols": {}, "timings": {},
            "resumed": resumed, "finished": None,
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
    def _testset(self, spec: TestSetSpec) -> TestSet:
        from bench.datasets.testset import build, read_testset

        if spec.path:
            folder = self.exp.path(spec.path, f"testsets.{spec.name}.path")
            info, rows = read_testset(folder)
            return TestSet(spec.name, folder, info, rows)
        source = spec.source
        if source != "synthetic" and not source.startswith("synthetic:"):
            source = str(self.exp.path(source, f"testsets.{spec.name}.source"))
        request = {"task": spec.task, "preset": spec.preset, "seed": spec.seed, "count": spec.count,
                   "source": source}
        folder = self.testset_root / f"{slug(spec.name)}-{hash_json(request)[:12]}"
        if self.dist.main:
            build(spec.task, source, folder, count=spec.count, seed=spec.seed, preset=spec.preset or None,
                  workers=spec.workers, progress=self.progress)
        self.dist.barrier()
        info, rows = read_testset(folder)
        return TestSet(spec.name, folder, info, rows)

    # -- methods -----------------------------------------------------------------------------
    def _create(self, spec: MethodConfig):
        return create_for_run(self.exp, spec, self.device)

    def _restore(self, method, spec: MethodConfig, ts: TestSet, key: str) -> Path:
        folder = self.out / "outputs" / slug(spec.name) / ts.id
        meta = {"method": spec.method, "options": spec.options, "testset_id": ts.id, "key": key}
        if self.dist.main:
            meta_path = folder / ".method.json"
            if meta_path.exists() and read_json(meta_path) != meta:
                shutil.rmtree(folder)  # outputs of other weights/options: never mix them with these
                self.log(f"  {spec.name}: weights or options changed, cleared {folder}")
            folder.mkdir(parents=True, exist_ok=True)
            write_json(meta_path, meta)
        self.dist.barrier()
        todo = [i for i in self.dist.shard(ts.ids) if not (folder / f"{i}.png").exists()]
        restore_images(method, spec, ts, todo, folder, self.batch_size, self._bar)
        return folder

    def _bar(self, items: list, desc: str):
        from tqdm import tqdm

        disable = (None if self.progress is None else not self.progress) if self.dist.main else True
        return tqdm(items, desc=desc, unit="batch", disable=disable, leave=False)

    # -- scoring -----------------------------------------------------------------------------
    def _score(self, spec: MethodConfig, ts: TestSet, folder: Path, names: list[str]) -> tuple[list, list]:
        metrics = self.metrics.make(names)
        for chunk in self._bar(list(batches(self.dist.shard(ts.ids), self.batch_size)),
                               f"scoring {spec.name} on {ts.name}"):
            pred = read_uint8_batch([folder / f"{i}.png" for i in chunk])
            gt = read_uint8_batch([ts.gt(i) for i in chunk])
            for metric in metrics:
                metric.update(pred, gt, ids=chunk)
        rows, per_image = self.metrics.results(names, metrics, self.dist)
        if self.dist.main:  # the merged states: keep Inception features for paired FID/KID claims
            save_features(self.out, spec.name, ts.id, [m.state_dict() for m in metrics])
        return rows, per_image

    # -- one method on one test set ----------------------------------------------------------
    def _pair(self, method, spec: MethodConfig, ts: TestSet, spec_ts: TestSetSpec, key: str,
              metric_names: list[str], state: RunState) -> None:
        cache = self.out / "scores" / slug(spec.name) / f"{ts.id}.json"
        cache_key = hash_json({"key": key, "metrics": metric_names, "metric_options": self.exp.spec.metric_options,
                               "bootstrap": self.settings.bootstrap, "seed": self.seed,
                               "analysis": spec.analysis, "restore": spec.restore,
                               "dissection_images": self.exp.spec.report.dissection_images,
                               "group_by": spec_ts.group_by, "world": "any"})
        cached = None
        if self.dist.main and cache.exists():
            data = read_json(cache)
            cached = data if data.get("cache_key") == cache_key else None
        cached = self.dist.broadcast(cached)
        if cached is None:
            rows, per_image = [], []
            if spec.restore:
                start = time.perf_counter()
                folder = self._guard(spec, ts, "restore", lambda: self._restore(method, spec, ts, key))
                state.timings["restore"] += time.perf_counter() - start
                if metric_names:
                    start = time.perf_counter()
                    rows, per_image = self._guard(spec, ts, "scoring",
                                                  lambda: self._score(spec, ts, folder, metric_names))
                    state.timings["scoring"] += time.perf_counter() - start
            start = time.perf_counter()
            target = analyses.Target(method, spec.name, ts, spec_ts.group_by,
                                     lambda ids: load_lq(method, spec, ts, ids))
            analysis = self._analyses(target, spec, rows, per_image, state)
            state.timings["analysis"] += time.perf_counter() - start
            cached = {"cache_key": cache_key, "rows": rows, "per_image": per_image, "analysis": analysis}
            if self.dist.main:
                write_json(cache, cached)
        else:
            self.log(f"  {spec.name} on {ts.name}: finished in an earlier run, reused")
        common = {"table": self.settings.table, "method": spec.name, "method_id": spec.method,
                  "testset": ts.name, "testset_id": ts.id, "task": ts.info.get("task"),
                  "weights_hash": state.info["methods"][spec.name].get("weights_hash")}
        for row in cached["rows"]:
            state.results.append({**common, "condition": row.pop("condition", ""), **row})
        for row in cached["per_image"]:
            state.per_image.append({"method": spec.name, "testset": ts.name, "testset_id": ts.id,
                                    "condition": row.pop("condition", ""), **row})
        state.analysis += cached["analysis"]

    def _analyses(self, target: analyses.Target, spec: MethodConfig, rows: list, per_image: list,
                  state: RunState) -> list[dict]:
        """The method's extra analyses: rows and per-image values are appended; dissection records returned."""
        ts, records = target.testset, []
        if "theta" in spec.analysis:
            theta = self._guard(spec, ts, "theta analysis", lambda: self._gathered(analyses.theta(
                target, self._bar(list(batches(self.dist.shard(ts.ids), self.batch_size)), f"θ {spec.name}"))))
            per_image += theta
            rows += analyses.theta_summary(theta, self.settings.bootstrap, self.seed)
        if "dissection" in spec.analysis:
            chosen = analyses.dissection_rows(ts.rows, self.exp.spec.report.dissection_images)
            folder = self.out / "analysis" / slug(spec.name) / ts.id / "dissection"
            records += self._guard(spec, ts, "dissection", lambda: self._gathered(
                analyses.dissection(target, self.dist.shard(chosen), folder, self.out)))
        if "params" in spec.analysis:
            rows += analyses.params_row(state.info["methods"][spec.name].get("params"))
        return records

    def _gathered(self, rows: list) -> list:
        """Every rank's rows, in rank order."""
        return [row for rank_rows in self.dist.gather(rows) for row in rank_rows]

    def _guard(self, spec: MethodConfig, ts: TestSet, stage: str, work):
        """Run `work` on every rank; if any rank fails, every rank raises the same _StageFailed."""
        error = None
        try:
            value = work()
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on with the next method
            value = None
            error = Failure(spec.name, ts.name, stage, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        errors = [e for e in self.dist.gather(error) if e is not None]
        if errors:
            raise _StageFailed(errors[0])
        return value

    # -- the whole run -----------------------------------------------------------------------
    def run(self) -> Path:
        """The whole run, holding the run folder's lock (rank 0) so a second writer is refused."""
        try:
            with folder_lock(self.out, "run folder") if self.dist.main else contextlib.nullcontext():
                state = self._open()
                try:
                    self._run(state)
                except BaseException as exc:  # say in run.json why the run stopped, then let the CLI report it
                    self._stopped(state, exc)
                    raise
        finally:
            self.dist.close()
        return self.out

    def _stopped(self, state: RunState, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            status, reason = "interrupted", "interrupted (Ctrl-C); continue with the same command and --resume"
        elif isinstance(exc, OSError):
            status, reason = "failed", describe_os_error(exc)
        else:
            status, reason = "failed", str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        state.info["status"], state.info["error"] = status, reason
        try:
            self._save(state)
        except OSError as save_error:  # e.g. the disk is still full: the CLI reports the first error
            self.log(f"could not record the run's status in {self.out / RUN_FILE}: {describe_os_error(save_error)}")

    def _run(self, state: RunState) -> None:
        metric_names = self.metrics.usable(state.info)  # first: an unknown metric stops the run before any work
        start = time.perf_counter()
        testsets = {}
        for spec_ts in self.exp.spec.testsets:
            self.log(f"test set {spec_ts.name}: {spec_ts.task}, {spec_ts.count} images")
            ts = self._testset(spec_ts)
            testsets[ts.name] = (ts, spec_ts)
            state.info["testsets"][ts.name] = {
                "id": ts.id, "dir": str(ts.dir.resolve()), "task": ts.info.get("task"),
                "preset": ts.info.get("preset"), "count": len(ts.rows), "seed": spec_ts.seed,
                "source": ts.info.get("source")}  # resolved: absolute folder, or synthetic
        state.timings["testsets"] += time.perf_counter() - start
        self._save(state)
        for spec in self.exp.spec.methods:
            self._method(spec, testsets, metric_names, state)
            self._save(state)
        if self.dist.main:
            write_by_degradation(self.out, self.seed)
        self._save(state, final=True)

    def _method(self, spec: MethodConfig, testsets: dict, metric_names: list[str], state: RunState) -> None:
        entry = state.info["methods"][spec.name] = {
            "method": spec.method, "weights": spec.weights, "options": spec.options, "note": spec.note,
            "status": "running", "weights_hash": None, "params": None}
        self.log(f"method {spec.name} ({spec.method})")
        try:
            start = time.perf_counter()
            method = self._create(spec)
            entry["weights"] = (str(self.exp.path(spec.weights, f"methods.{spec.name}.weights")) if spec.weights
                                else registry_files(method, spec.options))  # resolved, as loaded
            entry["weights_hash"] = weights_hash(method)
            model = getattr(method, "model", None)
            if isinstance(model, torch.nn.Module):
                entry["params"] = sum(p.numel() for p in model.parameters())
            entry["protocol"] = getattr(method, "protocol", {})
            entry["spec"] = {k: getattr(method.spec, k, None) for k in ("name", "task", "in_size", "out_size",
                                                                        "licence")}
            entry["create_s"] = round(time.perf_counter() - start, 3)
        except Exception as exc:  # noqa: BLE001 - recorded; other methods still run
            if spec.optional and isinstance(exc, MissingWeightsError):
                entry["status"] = "skipped"
                state.info["notes"].append({"kind": "weights-missing", "subject": spec.name, "method": spec.name,
                                            "title": "weights not found: how to get them", "message": str(exc)})
                self.log(f"  skipped: weights not found ({exc})")
            else:
                entry["status"] = "failed"
                state.info["failures"].append(vars(Failure(spec.name, "", "creation", f"{type(exc).__name__}: {exc}",
                                                           traceback.format_exc())))
                self.log(f"  FAILED to create: {exc}")
            return
        key = hash_json({"weights_hash": entry["weights_hash"], "options": spec.options, "method": spec.method,
                         "resize": [spec.resize_input, spec.resize_output]})
        failed = False
        for name, (ts, spec_ts) in testsets.items():
            if not spec.runs_on(name):
                continue
            try:
                self._pair(method, spec, ts, spec_ts, key, metric_names if spec.restore else [], state)
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


def run_experiment(exp: Experiment, out: str | Path, **options) -> Path:
    return Runner(exp, out, **options).run()
