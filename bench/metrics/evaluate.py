"""Score a folder pair: files paired by stem, each image decoded once, all metrics in one streaming pass.

Memory is bounded by the batch size (plus 8 KiB of Inception features per image). A background
thread decodes the next batches while the metrics run on the current one. The GT side's Inception
features are cached on disk, keyed by the GT files' SHA-256, the backend conventions and the
weights hash, so re-scoring another method on the same test set skips half of the FID work.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.errors import BenchError
from bench.io import image_files, read_rgb8
from bench.messages import short_list
from bench.metrics import build_metrics
from bench.metrics.base import protocol_id
from bench.metrics.fid import InceptionDistances
from bench.weights import DEFAULT_REGISTRY, Registry

RESIZE_POLICIES = ("error", "bicubic")
DEFAULT_METRICS = ("psnr", "ssim", "lpips", "fid", "kid")


def cache_dir() -> Path:
    """`$PANINI_BENCH_CACHE`, else `$XDG_CACHE_HOME/panini-bench` (default ~/.cache/panini-bench)."""
    override = os.environ.get("PANINI_BENCH_CACHE")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "panini-bench"


@dataclass(frozen=True)
class Pair:
    id: str
    gt: Path
    pred: Path


def pair_folders(gt_dir, pred_dir, allow_missing: bool = False) -> tuple[list[Pair], list[str], list[str]]:
    """(pairs, GT ids without prediction, prediction ids without GT). Missing/extra files are an error
    unless allow_missing, in which case only the common ids are scored and the rest is recorded."""
    gt, pred = image_files(gt_dir), image_files(pred_dir)
    missing, extra = sorted(set(gt) - set(pred)), sorted(set(pred) - set(gt))
    if (missing or extra) and not allow_missing:
        parts = []
        if missing:
            parts.append(f"no prediction in {pred_dir} for GT id(s) {short_list(missing, 20)}")
        if extra:
            parts.append(f"prediction(s) {short_list(extra, 20)} in {pred_dir} have no GT in {gt_dir}")
        raise BenchError("; ".join(parts) + "; fix the folders or pass --allow-missing to score the common ids")
    pairs = [Pair(i, gt[i], pred[i]) for i in sorted(set(gt) & set(pred))]
    if not pairs:
        raise BenchError(f"no image pairs: {gt_dir} and {pred_dir} share no file stems")
    return pairs, missing, extra


def _load_pair(pair: Pair, resize_policy: str, pixel_metrics: dict, keep: bool) -> tuple:
    """Decode one pair and compute its thread-safe CPU metrics right here, in the decoder thread (torch
    releases the GIL, so this overlaps with the networks on the main thread). Returns (gt, pred, values);
    the images only when KEEP (a metric on the main thread needs them), else (None, None, values)."""
    gt, pred = read_rgb8(pair.gt), read_rgb8(pair.pred)
    if gt.shape != pred.shape:
        if resize_policy == "error":
            raise BenchError(
                f"{pair.pred} is {pred.shape[1]}x{pred.shape[0]} but its GT {pair.gt} is "
                f"{gt.shape[1]}x{gt.shape[0]}; resize it or pass --resize-policy bicubic"
            )
        pred = np.array(Image.fromarray(pred).resize((gt.shape[1], gt.shape[0]), Image.BICUBIC))
    as_batch = [torch.from_numpy(x[None]).permute(0, 3, 1, 2) for x in (pred, gt)]
    values = {name: metric.values(*as_batch)[0] for name, metric in pixel_metrics.items()}
    return (gt, pred, values) if keep else (None, None, values)


@contextmanager
def _decoder_pool(workers: int):
    """Threads that decode pairs (and score the CPU pixel metrics), each running torch ops on one thread.

    The workers are the parallelism: an OpenMP team per worker would put workers x cores threads on the
    cores, spin-waiting at every barrier (several times slower on a shared machine). torch's thread count
    is per thread under OpenMP, but setting it also changes the default of threads started later, so the
    caller's count is set again afterwards.
    """
    threads = torch.get_num_threads()  # also fixes this thread's own count before the workers change the default
    try:
        with ThreadPoolExecutor(max(1, workers), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield pool
    finally:
        torch.set_num_threads(threads)


def _batches(pairs: list[Pair], batch_size: int, resize_policy: str, workers: int, pixel_metrics: dict,
             keep_images: bool):
    """Yield (ids, gt uint8 NCHW, pred uint8 NCHW, pixel values) batches of equal-size images, decoded ahead
    in threads (gt and pred are None unless KEEP_IMAGES).

    One batch of pairs is decoded ahead of the one being scored (at most two batches of images in memory).
    """
    upcoming = iter(pairs)
    with _decoder_pool(workers) as pool:
        ahead: deque = deque()

        def submit_next_batch():
            for pair in itertools.islice(upcoming, batch_size):
                ahead.append((pair, pool.submit(_load_pair, pair, resize_policy, pixel_metrics, keep_images)))

        submit_next_batch()
        while ahead:
            chunk = [ahead.popleft() for _ in range(min(batch_size, len(ahead)))]
            submit_next_batch()  # decodes while this batch is scored
            loaded = [future.result() for _, future in chunk]
            if keep_images:
                yield from _split_by_size([pair for pair, _ in chunk], loaded)
            else:
                yield [pair.id for pair, _ in chunk], None, None, [item[2] for item in loaded]


def _split_by_size(chunk, loaded):
    start = 0
    for end in range(1, len(chunk) + 1):
        if end == len(chunk) or loaded[end][0].shape != loaded[start][0].shape:
            gt = torch.from_numpy(np.stack([item[0] for item in loaded[start:end]])).permute(0, 3, 1, 2)
            pred = torch.from_numpy(np.stack([item[1] for item in loaded[start:end]])).permute(0, 3, 1, 2)
            yield [p.id for p in chunk[start:end]], gt, pred, [item[2] for item in loaded[start:end]]
            start = end


def _gt_cache_key(pairs: list[Pair], protocol: dict) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(pair.id.encode() + b"\0" + hashlib.sha256(pair.gt.read_bytes()).digest())
    conventions = {k: v for k, v in protocol.items() if k not in ("metric", "bootstrap", "kid")}
    digest.update(json.dumps(conventions, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def _load_cached(path: Path, ids: list[str]) -> np.ndarray | None:
    try:
        with np.load(path) as data:
            if list(data["ids"]) == ids:
                return data["features"]
    except (OSError, KeyError, ValueError):
        return None
    return None


def _save_cached(path: Path, ids: list[str], features: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.asarray(ids), features=features)
    os.replace(tmp, path)


def evaluate_folders(
    gt_dir,
    pred_dir,
    metrics=DEFAULT_METRICS,
    device="cpu",
    batch_size: int = 8,
    allow_missing: bool = False,
    resize_policy: str = "error",
    options: dict | None = None,
    registry: Registry = DEFAULT_REGISTRY,
    use_cache: bool = True,
    cache: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> tuple[list[dict], list[dict]]:
    """Score PRED_DIR against GT_DIR. Returns (result rows, per-image rows).

    options: per-metric keyword options, e.g. {"lpips": {"net": "vgg"}, "fid": {"backend": "clean-fid"}}.
    workers: decoder threads (default: number of CPUs, at most 8); they also compute PSNR/SSIM.
    Every row's protocol includes the pairing/resize conventions; its protocol_id hashes all of it.
    """
    from tqdm import tqdm

    if resize_policy not in RESIZE_POLICIES:
        raise BenchError(f"resize policy must be one of {RESIZE_POLICIES}, got {resize_policy!r}")
    if not metrics:
        raise BenchError("no metrics requested")
    pairs, missing, extra = pair_folders(gt_dir, pred_dir, allow_missing)
    workers = workers or min(8, os.cpu_count() or 1)
    by_name = build_metrics(metrics, device=device, registry=registry, options=options)
    objects = list(dict.fromkeys(by_name.values()))
    inception = next((m for m in objects if isinstance(m, InceptionDistances)), None)
    if inception is not None and len(pairs) < 2:
        raise BenchError(f"FID/KID need at least 2 image pairs, {gt_dir} and {pred_dir} have {len(pairs)}")

    cached_gt, cache_path = None, None
    if inception is not None and inception.reference == "gt" and use_cache:
        key = _gt_cache_key(pairs, inception.protocol_for(inception.outputs[0]))
        cache_path = (cache or cache_dir()) / "gt-features" / f"{key}.npz"
        cached_gt = _load_cached(cache_path, [p.id for p in pairs])
    gt_features = []

    bar = tqdm(total=len(pairs), unit="img", desc="evaluate", disable=None if progress is None else not progress)
    # On a CPU the cheap pure metrics run in the decoder threads; on an accelerator everything runs on the
    # batch, moved there once, and only per-image scalars and Inception features come back.
    threaded = {m.name: m for m in objects if getattr(m, "thread_safe", False) and m.device.type == "cpu"}
    target = torch.device(device)
    on_batches = [metric for metric in objects if metric.name not in threaded]
    for ids, gt, pred, thread_values in _batches(pairs, batch_size, resize_policy, workers, threaded,
                                                 keep_images=bool(on_batches)):
        for name, metric in threaded.items():
            metric.add([values[name] for values in thread_values], ids)
        if on_batches:  # metrics that need the whole batch on the device (networks; pixel metrics on a GPU)
            gt, pred = gt.to(target, non_blocking=True), pred.to(target, non_blocking=True)
            gt_f, pred_f = gt.float() / 255.0, pred.float() / 255.0
            for metric in on_batches:
                if metric is inception:
                    need_gt = inception.reference == "gt" and cached_gt is None
                    feats = metric.features(pred_f)
                    gt_feats = metric.features(gt_f) if need_gt else None
                    if gt_feats is not None:
                        gt_features.append(gt_feats)
                    metric.add_features(feats, gt_feats, ids)
                elif getattr(metric, "thread_safe", False):
                    metric.update(pred, gt, ids)  # uint8: the pixel metrics' own rounding is a no-op
                elif metric.name == "lpips" and target.type == "cpu":
                    for k in range(len(ids)):  # batch 1 is fastest for LPIPS on a CPU
                        metric.update(pred_f[k : k + 1], gt_f[k : k + 1], ids[k : k + 1])
                else:
                    metric.update(pred_f, gt_f, ids)
        bar.update(len(ids))
    bar.close()

    if cached_gt is not None:
        inception.set_reference_features(cached_gt)
    elif cache_path is not None and gt_features:
        _save_cached(cache_path, [p.id for p in pairs], np.concatenate(gt_features))

    evaluation = {"pairing": "by file stem", "decode": "PIL convert('RGB')", "resize_policy": resize_policy}
    rows, per_image = [], []
    for metric in objects:
        new_rows = metric.compute()
        renamed = {}
        for row in new_rows:
            old = row["protocol_id"]
            row["protocol"] = {**row["protocol"], "evaluation": evaluation, "execution": {"device": str(target)}}
            row["protocol_id"] = renamed[old] = protocol_id(row["protocol"])
            row["n_missing"], row["n_extra"] = len(missing), len(extra)
            if missing or extra:
                row["missing_ids"], row["extra_ids"] = missing, extra
            if metric is inception:
                row["gt_cache"] = "hit" if cached_gt is not None else ("written" if cache_path else "off")
            rows.append(row)
        for item in metric.per_image():
            per_image.append({**item, "protocol_id": renamed.get(item["protocol_id"], item["protocol_id"])})
    return rows, per_image
