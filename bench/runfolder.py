"""What `bench run` may do with an existing `--out`: resume it, restart it, replace it, or refuse.

A run folder is one that holds `run.json`. `--overwrite` only ever deletes inside a run folder (never
a folder without `run.json`), and keeps `testsets/` (built test sets are keyed by their settings and
verified when reused). A run that stopped before writing any output (e.g. a wrong source folder) may
be started again with changed settings without either flag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.errors import BenchError
from bench.io import read_json, read_jsonl
from bench.store import RESULTS_FILE, RUN_FILE

KEEP_ON_OVERWRITE = ("testsets",)
OUTPUT_FOLDERS = ("outputs", "scores", "analysis")
# leftovers of a killed writer: bench.io's atomic writes and the command method's scratch folders
STALE_PATTERNS = (".*.tmp-*", ".command-*")


def has_output(out: Path) -> bool:
    """Whether a run folder holds any result, restored image or cached score."""
    if (out / RESULTS_FILE).exists() and read_jsonl(out / RESULTS_FILE):
        return True
    return any(p.is_file() for name in OUTPUT_FOLDERS for p in (out / name).rglob("*"))


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete what killed writers left behind (only called while this process holds the folder's lock)."""
    stale = sorted({p for pattern in STALE_PATTERNS for p in out.rglob(pattern)})
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return stale


def clear_run(out: Path) -> None:
    """Empty a run folder for `--overwrite`, keeping the test sets built inside it."""
    if not (out / RUN_FILE).is_file():
        raise BenchError(f"{out} is not a run folder (no {RUN_FILE}); --overwrite only replaces run folders, so "
                         "nothing was deleted: choose another --out or empty it yourself")
    for path in out.iterdir():
        if path.name not in KEEP_ON_OVERWRITE:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def prepare(out: Path, config_hash: str, resume: bool, overwrite: bool) -> bool:
    """Make `out` ready for a run; returns whether finished work in it is reused (a resume).

    Refuses (BenchError) to mix a new run with another run's results: that needs --overwrite.
    """
    if resume and overwrite:
        raise BenchError("--resume continues a run and --overwrite replaces it: pass one of them")
    if overwrite and out.exists() and any(out.iterdir()):
        clear_run(out)
        return False
    if not (out / RUN_FILE).exists():
        return False
    old = read_json(out / RUN_FILE)
    same = old.get("config_hash") == config_hash
    if resume and same:
        return True
    if not has_output(out):  # stopped before any output (e.g. a wrong path): start again, whatever changed
        clear_run(out)
        return False
    if resume:
        raise BenchError(f"{out} holds a run of a different experiment config; --resume needs the same file and "
                         "--set values; pass --overwrite to replace that run, or choose another --out")
    raise BenchError(f"{out} already holds a run ({old.get('status')}); pass --resume to continue it, --overwrite "
                     "to replace it, or choose another --out")
