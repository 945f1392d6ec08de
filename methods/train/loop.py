"""The training loop shared by UDRL and Panini: processes, data, logging, checkpoints, resume.

A trainer (see `Trainer`) owns its modules, optimisers and losses and does one `train_step`;
this module does everything around it the same way for both tasks. It runs as one process or as
one of N under `torchrun` (DDP, NCCL on GPU, gloo on CPU); rank 0 alone logs, validates and writes
checkpoints, every rank reads the checkpoint on `--resume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.distributed import Dist
from bench.errors import BenchError
from bench.io import atomic_write_text, write_json
from bench.methods.train import checkpoint as ckpt
from bench.methods.train.config import diff_keys, dump_toml, fingerprint, fingerprint_data, to_dict
from bench.methods.train.data import DataSplit, ShardedBatchSampler, collate, make_preset, split_data, worker_init
from bench.methods.train.logs import MetricsLog, progress_line, warn


def seeded(seed: int):
    """Build modules under a fixed global seed without leaving the global RNG changed.

    Module constructors (nn.Conv2d & co.) draw their initial weights from the global generator;
    forking it keeps every other user of the global state unaffected.
    """
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=[]))
    torch.manual_seed(seed)
    return stack


def param_digest(module: nn.Module) -> str:
    """sha256 of every parameter and buffer, in state_dict order (cross-rank equality check)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """What a task provides. Subclasses set the attributes in `__init__`."""

    task: str
    pairs_allowed: bool = True  # whether `data.pairs` / `data.val_pairs` (fixed LQ/GT folders) may feed the task
    data: DataSplit  # training and validation sources (resolved first, so bad folders fail fast)
    preset: Any  # the `bench.degradations` preset that makes LQ images on the fly
    modules: dict[str, nn.Module]  # unwrapped modules, saved in checkpoints
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    generators: dict[str, torch.Generator]  # the trainer's own RNGs, saved in checkpoints

    def __init__(self, config: Any, env: Dist):
        """Subclasses call this first: it checks every data folder before their (slow) model build."""
        self.config, self.env = config, env
        self.data = split_data(config.data, config.run.seed, pairs_allowed=self.pairs_allowed)
        self.preset = make_preset(config.data)

    def dataset(self) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def learning_rates(self, iteration: int, steps_per_epoch: int) -> dict[str, float]:
        """Learning rate per optimiser at `iteration` (a pure function: schedules need no state)."""
        raise NotImplementedError

    def train_step(self, batch: dict, iteration: int) -> dict[str, float]:
        """One optimisation step; returns scalar metrics, including 'loss'."""
        raise NotImplementedError

    def validate(self, out_dir: Path, iteration: int) -> dict[str, float]:
        """Rank 0 only, modules in eval mode, no gradient; returns metrics named 'val/...'."""
        return {}

    def export(self, out_dir: Path, iteration: int) -> dict[str, str]:
        """Rank 0 only, at every checkpoint: write the trained weights for use outside training
        (atomically, replacing the previous export); returns their names and paths."""
        return {}

    def autocast(self):
        amp = self.config.run.amp
        if amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.env.torch_device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    @staticmethod
    def update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
        """One optimiser step on `loss`: clear gradients, backward through the (fp16) scaler, step."""
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def check_amp(amp: str, device: torch.device) -> None:
    if amp != "none" and device.type != "cuda":
        raise BenchError(f"run.amp = '{amp}' needs a CUDA device; use run.amp = 'none' on {device.type}")


def _set_lr(trainer: Trainer, iteration: int, steps_per_epoch: int) -> dict[str, float]:
    rates = trainer.learning_rates(iteration, steps_per_epoch)
    for name, lr in rates.items():
        for group in trainer.optimizers[name].param_groups:
            group["lr"] = lr
    return rates


def _state(trainer: Trainer, iteration: int) -> dict:
    config = trainer.config
    return {
        "task": trainer.task,
        "iteration": iteration,
        "fingerprint": fingerprint(config),
        "config": to_dict(config),
        "modules": {k: m.state_dict() for k, m in trainer.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in trainer.optimizers.items()},
        "scalers": {k: s.state_dict() for k, s in trainer.scalers.items()},
        "rng": ckpt.rng_state(trainer.generators),
    }


def _restore(trainer: Trainer, state: dict, path: Path) -> int:
    if state.get("task") != trainer.task:
        raise BenchError(f"checkpoint {path} is from `bench train {state.get('task')}`, not {trainer.task}")
    if state["fingerprint"] != fingerprint(trainer.config):
        changed = diff_keys(fingerprint_data(trainer.config), _saved_fingerprint_data(trainer.config, state["config"]))
        raise BenchError(
            f"checkpoint {path} was written with a different config (changed: {'; '.join(changed) or 'unknown'}); "
            "resume with the same config or start a new run in another run.out_dir"
        )
    for name, module in trainer.modules.items():
        module.load_state_dict(state["modules"][name])
    for name, opt in trainer.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    for name, scaler in trainer.scalers.items():
        scaler.load_state_dict(state["scalers"][name])
    ckpt.restore_rng_state(state["rng"], trainer.generators)
    return int(state["iteration"])


def _saved_fingerprint_data(config: Any, saved: dict) -> dict:
    """The saved config in fingerprint form, for naming what changed (raw dict if it no longer parses)."""
    from bench.methods.train.config import TASKS, from_dict

    task = next(name for name, cls in TASKS.items() if isinstance(config, cls))
    try:
        return fingerprint_data(from_dict(task, saved))
    except BenchError:
        return saved


def _save(trainer: Trainer, folder: Path, iteration: int) -> Path:
    path = ckpt.checkpoint_path(folder, iteration)
    ckpt.save_atomic(_state(trainer, iteration), path)
    ckpt.prune(folder, trainer.config.run.keep_checkpoints)
    return path


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal, silent in CI logs
    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, disable=None if enabled else True)


def run_training(trainer: Trainer, resume: bool = False) -> dict:
    """Train until `run.iterations`; returns a summary (also written to `final.json` by rank 0)."""
    cfg, env = trainer.config, trainer.env
    out_dir = Path(cfg.run.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    start = 0
    existing = ckpt.list_checkpoints(ckpt_dir)
    if resume:
        if not existing:
            raise BenchError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
        start = _restore(trainer, ckpt.load(existing[-1]), existing[-1])
    elif existing:
        raise BenchError(
            f"{out_dir} already holds checkpoints (latest {existing[-1].name}); "
            "pass --resume to continue it, or set run.out_dir to a new folder"
        )
    if env.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.toml", dump_toml(cfg))
        write_json(out_dir / "validation.json", trainer.data.record)
    log = MetricsLog(out_dir, start, enabled=env.main, tensorboard=cfg.run.tensorboard)

    dataset = trainer.dataset()
    sampler = ShardedBatchSampler(len(dataset), cfg.run.batch_size, env.rank, env.world, cfg.run.seed,
                                  start, cfg.run.iterations)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.run.workers, collate_fn=collate,
        worker_init_fn=worker_init, pin_memory=env.torch_device.type == "cuda",
        persistent_workers=False, prefetch_factor=2 if cfg.run.workers > 0 else None,
        # spawn, not fork: a forked worker deadlocks in OpenCV/OpenMP when the parent already ran their
        # thread pools (it does after validation, or in any process that degraded an image before)
        multiprocessing_context="spawn" if cfg.run.workers > 0 else None,
    )
    skipped: set[str] = set()
    window: dict[str, list[float]] = {}
    last_good = existing[-1] if resume else None
    artefacts: dict[str, str] = {}
    iteration = start
    bar = _progress(cfg.run.iterations, start, cfg.run.progress and env.main)
    # off a terminal (nohup, CI, cluster jobs) the bar is silent: print one line per log row instead
    print_lines = cfg.run.progress and env.main and bar.disable
    if start == 0 and cfg.run.val_every > 0:
        if env.main:
            _validate(trainer, log, out_dir, 0, print_lines)  # the baseline every later value compares to
        env.barrier()
    tick, tick_iteration = time.perf_counter(), start
    started = tick
    try:
        for batch in loader:
            rates = _set_lr(trainer, iteration, sampler.steps_per_epoch)
            for problem in batch.pop("skipped", []):
                if problem not in skipped:
                    skipped.add(problem)
                    if env.main:
                        warn(f"skipped unreadable image ({len(skipped)} so far): {problem}")
            metrics = trainer.train_step(batch, iteration)
            iteration += 1
            bad = not all(math.isfinite(v) for v in metrics.values())
            if env.any(bad):
                where = (f"the last good checkpoint {last_good} is kept" if last_good
                         else "no checkpoint was written yet")
                raise BenchError(
                    f"non-finite loss at iteration {iteration} ({_fmt(metrics)}); training stopped and {where}; "
                    "lower the learning rate or switch off run.amp, then resume"
                )
            for k, v in metrics.items():
                window.setdefault(k, []).append(v)
            bar.update(1)
            if iteration % cfg.run.log_every == 0 or iteration == cfg.run.iterations:
                now = time.perf_counter()
                row = {k: sum(v) / len(v) for k, v in window.items()}
                row.update({f"lr/{k}": v for k, v in rates.items()})
                row["it_per_s"] = (iteration - tick_iteration) / max(now - tick, 1e-9)
                # remaining iterations at the mean rate since this process started (validation included)
                row["eta_s"] = (cfg.run.iterations - iteration) * (now - started) / (iteration - start)
                row["skipped_images"] = len(skipped)
                log.write(iteration, row)
                bar.set_postfix(loss=f"{row['loss']:.4g}", it_s=f"{row['it_per_s']:.3g}")
                if print_lines:
                    progress_line(trainer.task, iteration, cfg.run.iterations, row)
                window.clear()
                tick, tick_iteration = now, iteration
            if cfg.run.val_every > 0 and (iteration % cfg.run.val_every == 0 or iteration == cfg.run.iterations):
                if env.main:
                    _validate(trainer, log, out_dir, iteration, print_lines)
                env.barrier()
            stopping = iteration == cfg.run.stop_after
            if iteration % cfg.run.checkpoint_every == 0 or iteration == cfg.run.iterations or stopping:
                if env.main:
                    last_good = _save(trainer, ckpt_dir, iteration)
                    artefacts = trainer.export(out_dir, iteration)
                env.barrier()
            if stopping:
                break
    finally:
        bar.close()
        log.close()
    if env.enabled:
        # BatchNorm running statistics are updated from each rank's own batch; DDP re-broadcasts rank 0's
        # at every forward, so do the same once more before comparing ranks (checkpoints hold rank 0's)
        for module in trainer.modules.values():
            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)
    digests = [param_digest(m) for m in trainer.modules.values()]
    all_digests = [digests]
    if env.enabled:
        all_digests = env.gather(digests)
    summary = {"task": trainer.task, "iterations": iteration, "world_size": env.world,
               "skipped_images": sorted(skipped), "rank_digests": all_digests,
               "ranks_identical": all(d == all_digests[0] for d in all_digests)}
    summary["finished"] = iteration >= cfg.run.iterations
    summary["artefacts"] = artefacts
    if env.main and summary["finished"]:
        write_json(out_dir / "final.json", summary)
    env.barrier()
    return summary


def _validate(trainer: Trainer, log: MetricsLog, out_dir: Path, iteration: int, print_lines: bool) -> None:
    metrics = trainer.validate(out_dir, iteration)
    log.write(iteration, metrics)
    if print_lines and metrics:
        progress_line(trainer.task, iteration, trainer.config.run.iterations, metrics)


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def resolve_threads(config: Any) -> Any:
    """`run.threads` = 0 -> the CPU count (this process's affinity) / max(1, workers) / processes on
    this node, at least 1: oversubscribed cores made a tiny step 30x slower on a loaded 2-core machine."""
    if config.run.threads < 0:
        raise BenchError(f"run.threads must be 0 (automatic) or positive, got {config.run.threads}")
    if config.run.threads:
        return config
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = max(1, cpus // (max(1, config.run.workers) * local_processes))
    return dataclasses.replace(config, run=dataclasses.replace(config.run, threads=threads))


def run_task(task: str, config: Any, resume: bool = False) -> dict:
    """Build the task's trainer in this process (and process group) and train it.

    Torch's intra-op thread count is set to `run.threads` (resolved, and so recorded in the run's
    `config.toml`) for the run and restored afterwards.
    """
    config = resolve_threads(config)
    env = Dist.from_env(config.run.device)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.run.threads)
    try:
        check_amp(config.run.amp, env.torch_device)
        if task == "udrl":
            from bench.methods.train.udrl import UdrlTrainer as cls
        elif task == "panini":
            from bench.methods.train.panini import PaniniTrainer as cls
        else:
            raise BenchError(f"unknown training task '{task}'; choose udrl or panini")
        return run_training(cls(config, env), resume=resume)
    finally:
        torch.set_num_threads(threads_before)
        env.close()
