"""Issue 15 item 5: every JSON the CLI writes is strict (no Infinity/NaN); non-finite values are null
with a `<key>_nonfinite` field saying why."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.cli import main
from bench.io import dumps, dumps_line, strict_json
from conftest import flat_images


def _refuse(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_load(text: str):
    """json.loads that refuses Infinity, -Infinity and NaN, as strict parsers (browsers, jq, Go) do."""
    return json.loads(text, parse_constant=_refuse)


def strict_load_file(path: Path) -> list:
    """Every JSON document in a .json or .jsonl file, parsed strictly."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [strict_load(line) for line in text.splitlines() if line.strip()]
    return [strict_load(text)]


def test_non_finite_values_become_null_with_a_reason():
    row = {"value": math.inf, "ci_low": math.nan, "n": 3, "per": [1.0, math.inf, -math.inf, math.inf],
           "nested": {"x": -math.inf}}
    clean = strict_json(row)
    assert clean["value"] is None and clean["value_nonfinite"] == "inf"
    assert clean["ci_low"] is None and clean["ci_low_nonfinite"] == "nan"
    assert clean["per"] == [1.0, None, None, None] and clean["per_nonfinite"] == {"-inf": 1, "inf": 2}
    assert clean["nested"] == {"x": None, "x_nonfinite": "-inf"}
    assert "n_nonfinite" not in clean
    assert strict_load(dumps(row)) == strict_load(dumps_line(row)) == clean


def test_evaluate_json_of_identical_images_is_strict(tmp_path):
    folder = flat_images(tmp_path / "gt", [0, 40, 80])
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--gt", str(folder), "--pred", str(folder), "--metrics", "psnr", "--json", str(out)]) == 0
    data = strict_load_file(out)[0]
    psnr = next(r for r in data["results"] if r["metric"] == "psnr")
    assert psnr["value"] is None and psnr["value_nonfinite"] == "inf"


def test_training_log_lines_are_strict():
    """Training logs go through the same writer (bench.io.dumps_line): a NaN loss stays parseable."""
    assert strict_load(dumps_line({"iteration": 1, "loss": math.nan}))["loss_nonfinite"] == "nan"
