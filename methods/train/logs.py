"""Training logs: JSON lines (every metric), CSV (the columns of the first row), TensorBoard if installed.

On resume, rows past the resumed iteration (written by a run that died before its next checkpoint)
are dropped first, so the logs read like one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from bench.io import atomic_write_text, dumps_line


def warn(message: str) -> None:
    print(f"bench train: warning: {message}", file=sys.stderr, flush=True)


def _truncate_jsonl(path: Path, last_iteration: int) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if row.get("iteration", 0) <= last_iteration:
                rows.append(row)
    return rows


class MetricsLog:
    """`log.jsonl` + `log.csv` (+ `tb/` event files) under the run folder; inert on ranks > 0."""

    def __init__(self, out_dir: Path, start_iteration: int, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        out_dir = Path(out_dir)
        self.jsonl_path, self.csv_path = out_dir / "log.jsonl", out_dir / "log.csv"
        rows = _truncate_jsonl(self.jsonl_path, start_iteration)
        atomic_write_text(self.jsonl_path, "".join(dumps_line(r) + "\n" for r in rows))
        self.columns: list[str] | None = None
        train_rows = [r for r in rows if not any(k.startswith("val/") for k in r)]
        if train_rows:
            self.columns = list(train_rows[0])
        self._rewrite_csv(train_rows)
        self.jsonl = self.jsonl_path.open("a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=start_iteration + 1)

    def _rewrite_csv(self, rows: list[dict]) -> None:
        handle = io.StringIO(newline="")
        if self.columns:
            writer = csv.DictWriter(handle, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.csv_path, handle.getvalue())

    def write(self, iteration: int, metrics: dict[str, float]) -> None:
        if not self.enabled or not metrics:
            return
        row = {"iteration": iteration, **{k: float(v) for k, v in metrics.items()}}
        self.jsonl.write(dumps_line(row) + "\n")  # strict JSON: inf/nan as strings
        self.jsonl.flush()
        if not any(k.startswith("val/") for k in metrics):
            if self.columns is None:
                self.columns = list(row)
                self._rewrite_csv([])
            with self.csv_path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, iteration)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            if self.tb is not None:
                self.tb.close()
