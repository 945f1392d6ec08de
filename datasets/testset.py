"""The seeded test-set builder: source images -> `gt/`, `lq/`, `manifest.jsonl`, `testset.json`.

Reproducibility rules (DESIGN.md, "How data flows"):
- ids are chosen with `default_rng(seed)` (a permutation prefix, so a smaller set is a subset of a
  larger one with the same seed), and each image's degradation parameters come from
  `default_rng([seed, index])` (index = position in the sorted source folder; theta variants add
  the variant number), so results never depend on order, worker count or start method;
- every file is written atomically; a journal (`.build/rows.jsonl`) records finished images, so a
  killed build resumes and ends byte-identical to an uninterrupted one. A journal row is trusted only
  when its files' hashes match, so images are not fsynced one by one (each fsync is a wait on the disk
  that also serialises the workers): all of them are flushed in one pass before the manifest is written;
- `testset.json` is written last and carries the test-set id: the sha256 of `manifest.jsonl`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench import __version__
from bench.datasets.folder import fit_to_square, list_images
from bench.datasets.synthetic import synthetic_face
from bench.degradations.presets import DEFAULT_PRESET, TASKS, get_preset, preset_settings
from bench.errors import BenchError
from bench.io import (
    PNG_ENCODING,
    BadImageError,
    atomic_write_bytes,
    atomic_write_text,
    decode_rgb8,
    dumps_line,
    encode_png,
    read_json,
    read_jsonl,
    sha256_bytes,
    sha256_file,
    write_jsonl,
)
from bench.locks import folder_lock

FORMAT_VERSION = 1
GT_SIZE = 1024
DEFAULT_COUNT = 1000  # the paper's test sets; a smaller source gives all its images (recorded)
_BUILD_DIR = ".build"


@dataclass(frozen=True)
class SourceItem:
    index: int  # position in the sorted source listing: the key of the per-image generator
    id: str
    name: str  # file name, or "synthetic:<index>"
    path: str | None  # None for synthetic faces


def resolve_source(source: str | Path, count: int) -> list[SourceItem]:
    """A folder of images, or `synthetic` / `synthetic:N` for N built-in synthetic faces (N defaults to count)."""
    text = str(source)
    if text == "synthetic" or text.startswith("synthetic:"):
        n_text = text.partition(":")[2]
        try:
            n = int(n_text) if n_text else count
        except ValueError:
            raise BenchError(f"--source {text}: expected 'synthetic' or 'synthetic:N' with a number N") from None
        return [SourceItem(i, f"synth{i:05d}", f"synthetic:{i}", None) for i in range(n)]
    return [SourceItem(i, p.stem, p.name, str(p)) for i, p in enumerate(list_images(text))]


def resolve_count(count: int | str | None, available: int) -> tuple[int, str]:
    """The number of source images to use and how it was decided (recorded in testset.json).

    An integer is taken as asked; "all" means every image of the source; None (the default) means
    `DEFAULT_COUNT`, or all images when the source holds fewer.
    """
    if count == "all":
        return available, f"all: every image of the source ({available})"
    if count is None:
        if available < DEFAULT_COUNT:
            return available, f"default {DEFAULT_COUNT}, but the source holds {available}: all of them"
        return DEFAULT_COUNT, f"default {DEFAULT_COUNT}"
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BenchError(f"--count must be at least 1 (or 'all'), got {count!r}")
    return count, f"asked for {count}"


def choose_items(items: list[SourceItem], count: int, seed: int) -> list[SourceItem]:
    if count > len(items):
        raise BenchError(f"--count {count} asks for more images than the source has ({len(items)})")
    order = np.random.default_rng(seed).permutation(len(items))[:count]
    return [items[i] for i in sorted(order)]


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs for one source image (picklable)."""

    item: SourceItem
    task: str
    preset: object
    seed: int
    out: str
    resize: bool
    skip_bad: bool


def _load_source(item: SourceItem, resize: bool) -> tuple[np.ndarray, str, str | None]:
    if item.path is None:
        img = synthetic_face(item.index, GT_SIZE)
        return img, sha256_bytes(img.tobytes()), None
    data = Path(item.path).read_bytes()
    img, note = decode_rgb8(data, item.path)
    img, resize_note = fit_to_square(img, GT_SIZE, item.path, resize)
    notes = "; ".join(n for n in (note, resize_note) if n) or None
    return img, sha256_bytes(data), notes


def _process(job: _Job) -> list[dict]:
    """Make GT and LQ files for one source image (all variants); returns journal rows."""
    item, preset = job.item, job.preset
    try:
        gt, source_sha, conversion = _load_source(item, job.resize)
    except BadImageError as exc:
        if not job.skip_bad:
            raise BadImageError(f"{exc}; remove it or pass --skip-bad") from None
        return [{"skipped": {"source": item.name, "reason": str(exc)}}]
    gt_png = encode_png(gt)
    variants = preset.variants()
    rows = []
    for v, fixed in enumerate(variants):
        key = [job.seed, item.index] if len(variants) == 1 else [job.seed, item.index, v]
        params = preset.sample(np.random.default_rng(key), fixed)
        lq_png = encode_png(preset.apply(gt, params))
        image_id = item.id + (preset.variant_suffix(fixed) if len(variants) > 1 else "")
        atomic_write_bytes(Path(job.out, "gt", image_id + ".png"), gt_png, durable=False)
        atomic_write_bytes(Path(job.out, "lq", image_id + ".png"), lq_png, durable=False)
        rows.append(
            {
                "id": image_id,
                "index": item.index,
                "source": item.name,
                "source_sha256": source_sha,
                "conversion": conversion,
                "gt_sha256": sha256_bytes(gt_png),
                "lq_sha256": sha256_bytes(lq_png),
                "task": job.task,
                "preset": preset.name,
                "preset_version": preset.version,
                "params": params,
            }
        )
    return rows


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _request(task, preset, seed, count, source, resize, skip_bad) -> dict:
    return {
        "format": FORMAT_VERSION,
        "task": task,
        "preset": preset.name,
        "preset_version": preset.version,
        "preset_settings": preset_settings(preset),
        "seed": seed,
        "count": count,
        "source": text if (text := str(source)).startswith("synthetic") else os.path.abspath(text),
        "resize": resize,
        "skip_bad": skip_bad,
        "gt_size": GT_SIZE,
        "png_encoding": PNG_ENCODING,
    }


def _prepare_out(out: Path, request: dict, overwrite: bool) -> str:
    """Decide what to do with `out`: 'fresh', 'resume' or 'done'. Refuses to clobber silently."""
    ours = [out / "gt", out / "lq", out / "manifest.jsonl", out / "testset.json", out / _BUILD_DIR]
    if overwrite:
        for path in ours:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if not out.exists() or not any(out.iterdir()):
        return "fresh"
    previous = None
    for marker in (out / "testset.json", out / _BUILD_DIR / "request.json"):
        if marker.exists():
            recorded = json.loads(marker.read_text())
            previous = {key: recorded.get(key) for key in request}
            state = "done" if marker.name == "testset.json" else "resume"
            break
    if previous is None:
        raise BenchError(f"{out} is not empty and is not a test set; choose another --out or pass --overwrite")
    changed = sorted(k for k in set(previous) | set(request) if previous.get(k) != request.get(k))
    if changed == ["skip_bad"] and (request["skip_bad"] or not _skipped_any(out)):
        return state  # allowing skips, or refusing them when nothing was skipped, changes no file
    if changed:
        raise BenchError(
            f"{out} holds a test set built with other settings ({', '.join(changed)} differ); "
            "choose another --out or pass --overwrite to rebuild it"
        )
    return state


def _skipped_any(out: Path) -> bool:
    """Whether a finished or partial build in `out` recorded unreadable sources as skipped."""
    if (out / "testset.json").exists():
        return bool(json.loads((out / "testset.json").read_text()).get("skipped"))
    return bool(_journal_rows(out)[1])


def _journal_rows(out: Path) -> tuple[dict[str, dict], list[dict]]:
    """Finished rows from the journal whose files are intact, and recorded skips."""
    journal = out / _BUILD_DIR / "rows.jsonl"
    done, skipped = {}, []
    if not journal.exists():
        return done, skipped
    for row in read_jsonl(journal, tolerate_partial_last_line=True):
        if "skipped" in row:
            skipped.append(row["skipped"])
            continue
        gt, lq = out / "gt" / f"{row['id']}.png", out / "lq" / f"{row['id']}.png"
        if gt.exists() and lq.exists() and sha256_file(gt) == row["gt_sha256"] and sha256_file(lq) == row["lq_sha256"]:
            done[row["id"]] = row
    return done, skipped


def build(task: str, source: str | Path, out: str | Path, **options) -> dict:
    """Build (or resume, or reuse) a test set; returns the content of `testset.json` (see `_build`).

    One writer per folder: a second build into the same `out` while one runs is a BenchError.
    """
    with folder_lock(out, "test set"):
        return _build(task, source, out, **options)


def _build(
    task: str,
    source: str | Path,
    out: str | Path,
    *,
    count: int | str | None = None,
    seed: int = 0,
    preset: str | None = None,
    params: dict | None = None,
    workers: int = 1,
    overwrite: bool = False,
    skip_bad: bool = False,
    resize: bool = False,
    progress: bool | None = None,
) -> dict:
    """Build (or resume, or reuse) a test set; returns the content of `testset.json`.

    `params` overrides preset fields (e.g. `{"sigma": (0.5, 4.0)}`); `progress=None` shows a bar only
    on a terminal; `count`: see `resolve_count`. Every argument is validated before any file is written.
    """
    if task not in TASKS:
        raise BenchError(f"unknown task '{task}'; choose from {', '.join(TASKS)}")
    preset_name = preset or DEFAULT_PRESET[task]
    try:
        preset_obj = get_preset(preset_name, **(params or {}))
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if preset_obj.task != task:
        raise BenchError(f"preset '{preset_name}' is for task '{preset_obj.task}', not '{task}'")
    if workers < 1:
        raise BenchError(f"--workers must be at least 1, got {workers}")
    items = resolve_source(source, count if isinstance(count, int) else DEFAULT_COUNT)
    count, count_rule = resolve_count(count, len(items))
    chosen = choose_items(items, count, seed)
    out = Path(out)
    request = _request(task, preset_obj, seed, count, source, resize, skip_bad)
    state = _prepare_out(out, request, overwrite)
    if state == "done":
        return json.loads((out / "testset.json").read_text())

    for sub in ("gt", "lq", _BUILD_DIR):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for leftover in [*out.glob("gt/.*.tmp-*"), *out.glob("lq/.*.tmp-*")]:
        leftover.unlink()
    atomic_write_text(out / _BUILD_DIR / "request.json", json.dumps(request, indent=1, sort_keys=True))
    done, skipped = _journal_rows(out)
    n_variants = len(preset_obj.variants())
    skipped_sources = {s["source"] for s in skipped}
    ids_done = {}
    for row in done.values():
        ids_done[row["source"]] = ids_done.get(row["source"], 0) + 1
    jobs = [
        _Job(item, task, preset_obj, seed, str(out), resize, skip_bad)
        for item in chosen
        if ids_done.get(item.name, 0) < n_variants and item.name not in skipped_sources
    ]

    from tqdm import tqdm

    rows = dict(done)
    with open(out / _BUILD_DIR / "rows.jsonl", "a", encoding="utf-8") as journal, tqdm(
        total=len(chosen), initial=len(chosen) - len(jobs), desc=f"testset {task}", unit="img",
        disable=None if progress is None else not progress,
    ) as bar:
        for job_rows in _run_jobs(jobs, workers):
            for row in job_rows:
                journal.write(dumps_line(row) + "\n")
                if "skipped" in row:
                    skipped.append(row["skipped"])
                else:
                    rows[row["id"]] = row
            journal.flush()  # a killed build keeps it; rows lost in a power cut only redo those images
            bar.update(1)

    manifest = [rows[k] for k in sorted(rows)]
    if not manifest:
        raise BenchError(f"no usable images in {source}: all {len(skipped)} were skipped as unreadable")
    _flush_to_disk(out / kind / f"{row['id']}.png" for row in manifest for kind in ("gt", "lq"))
    write_jsonl(out / "manifest.jsonl", manifest)
    testset_id = sha256_file(out / "manifest.jsonl")
    info = {
        **request,
        "count_rule": count_rule,
        "n_images": len(manifest),
        "skipped": sorted(skipped, key=lambda s: s["source"]),
        "tool": "panini-bench",
        "tool_version": __version__,
        "manifest_sha256": testset_id,
        "testset_id": testset_id,
    }
    info["info_sha256"] = info_sha256(info)
    atomic_write_text(out / "testset.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(out / _BUILD_DIR)
    return info


def _flush_to_disk(paths) -> None:
    """fsync files written with `durable=False`; already written-back files cost almost nothing."""
    for path in paths:
        fd = os.open(path, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _run_jobs(jobs: list[_Job], workers: int):
    if not jobs:
        return
    if workers == 1:
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            yield from map(_process, jobs)
        finally:
            cv2.setNumThreads(previous)
        return
    # fork is fastest, but forking a process whose torch/OpenMP threads have run can deadlock the
    # children; then use a fresh interpreter per worker instead.
    import sys

    methods = multiprocessing.get_all_start_methods()
    method = "fork" if "fork" in methods and "torch" not in sys.modules else "spawn"
    with multiprocessing.get_context(method).Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(_process, jobs)


def info_sha256(info: dict) -> str:
    """Hash of every other field of testset.json, so `verify` notices an edited setting."""
    return sha256_bytes(json.dumps({k: v for k, v in info.items() if k != "info_sha256"}, sort_keys=True).encode())


def read_testset(folder: str | Path) -> tuple[dict, list[dict]]:
    """`testset.json` and the manifest rows of a finished test set (clear error otherwise)."""
    folder = Path(folder)
    info_path, manifest_path = folder / "testset.json", folder / "manifest.jsonl"
    if not info_path.exists():
        hint = " (its build did not finish: run the same build command again to resume)" if (
            folder / _BUILD_DIR
        ).exists() else ""
        raise BenchError(f"{folder} is not a test set: {info_path.name} is missing{hint}")
    if not manifest_path.exists():
        raise BenchError(f"{manifest_path} is missing; rebuild the test set")
    return read_json(info_path), read_jsonl(manifest_path)  # a cut-off file is a BenchError naming it


def verify(folder: str | Path) -> list[str]:
    """Re-hash every file against the manifest; returns a list of problems (empty = intact)."""
    folder = Path(folder)
    info, rows = read_testset(folder)
    problems = []
    if sha256_file(folder / "manifest.jsonl") != info.get("testset_id"):
        problems.append("manifest.jsonl does not match the test-set id in testset.json")
    problems += _settings_problems(info, rows)
    expected = set()
    for row in rows:
        for kind in ("gt", "lq"):
            path = folder / kind / f"{row['id']}.png"
            expected.add(path)
            if not path.exists():
                problems.append(f"missing {path}")
            elif sha256_file(path) != row[f"{kind}_sha256"]:
                problems.append(f"hash mismatch {path}")
    extra = sorted(p for kind in ("gt", "lq") for p in (folder / kind).glob("*") if p not in expected)
    problems.extend(f"unexpected file {p}" for p in extra)
    return problems


def _settings_problems(info: dict, rows: list[dict]) -> list[str]:
    """What in testset.json disagrees with its own settings hash or with the manifest it describes."""
    problems = []
    recorded = info.get("info_sha256")
    if recorded is None:
        problems.append("testset.json has no info_sha256 (built by an older version): rebuild it to verify its "
                        "settings")
    elif info_sha256(info) != recorded:
        problems.append("testset.json: its fields do not match their recorded info_sha256 (an edited setting)")
    if info.get("n_images") != len(rows):
        problems.append(f"testset.json: n_images is {info.get('n_images')} but the manifest has {len(rows)} rows")
    for key in ("task", "preset", "preset_version"):
        differing = sorted({str(row.get(key)) for row in rows} - {str(info.get(key))})
        if differing:
            problems.append(f"testset.json: {key} is {info.get(key)!r} but the manifest says {', '.join(differing)}")
    return problems
