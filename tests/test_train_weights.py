"""Trained checkpoints are weights (issue 13): generator.pth and iter_*.pt evaluate, Table 3 from your own run."""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError
from bench.io import read_json, read_jsonl
from bench.methods import create_method
from bench.methods.train.config import load_config
from bench.methods.train.loop import run_task

torch.set_num_threads(1)
FAST = ["run.progress=false", "run.threads=1", "run.val_every=0", "loss.perceptual=0.0", "run.iterations=2",
        "run.checkpoint_every=1"]
# a tiny 2x "16x SR" network: 64 -> 128 px (Cat-Conv or DAFI), trained on synthetic faces
TINY_SR = ["model.task='sr16'", "data.degradation='sr16'", "data.degradation_options={}", "model.dre='random'"]


def train(out_dir, *overrides: str) -> dict:
    config = load_config("panini", "train-panini-tiny", [f"run.out_dir='{out_dir}'", *FAST, *overrides])
    return run_task("panini", config)


@pytest.fixture(scope="module")
def mfr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mfr")
    train(out)
    return out


def lq_batch(size: int) -> torch.Tensor:
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_generator_pth_and_checkpoints_are_weights_at_their_own_size(mfr_run):
    final = create_method("panini-mfr", weights=str(mfr_run / "generator.pth"))
    assert (final.spec.in_size, final.spec.out_size) == (64, 128)  # the tiny run's size, not the release's
    last = create_method("panini-mfr", weights=str(mfr_run / "checkpoints" / "iter_00000002.pt"))
    first = create_method("panini-mfr", weights=str(mfr_run / "checkpoints" / "iter_00000001.pt"))
    lq = lq_batch(64)
    out = final.restore(lq)
    assert out.shape == (2, 3, 128, 128)
    assert torch.equal(out, last.restore(lq))  # the last checkpoint and the export are the same weights
    assert not torch.equal(out, first.restore(lq))  # an earlier checkpoint is its own model
    # the config option cannot contradict the file
    with pytest.raises(BenchError, match=r"generator\.pth .*in_size=64"):
        create_method("panini-mfr", weights=str(mfr_run / "generator.pth"), config="tiny")


def test_a_checkpoint_of_another_task_or_trainer_names_the_right_method(mfr_run, tmp_path):
    with pytest.raises(BenchError, match=r"generator\.pth .*MFR.*use method 'panini-mfr'"):
        create_method("panini-sr16", weights=str(mfr_run / "generator.pth"))
    with pytest.raises(BenchError, match=r"iter_00000002\.pt .*use method 'panini-mfr'"):
        create_method("panini-catconv-sr16", weights=str(mfr_run / "checkpoints" / "iter_00000002.pt"))
    udrl = load_config("udrl", "train-udrl-tiny", [f"run.out_dir='{tmp_path}'", "run.progress=false", "run.threads=1",
                                                   "run.iterations=1", "run.val_every=0"])
    run_task("udrl", udrl)
    for name in ("dre.pth", "checkpoints/iter_00000001.pt"):
        with pytest.raises(BenchError, match="bench train udrl.*model.dre"):
            create_method("panini-mfr", weights=str(tmp_path / name))


@pytest.mark.slow  # two tiny trainings, a 1024 px test set and a run: ~15 s idle, ~50 s on a loaded 2-core machine
def test_table3_from_your_own_training_end_to_end(tmp_path):
    """Tiny Cat-Conv and DAFI SR runs, evaluated by the bundled table3_fusion experiment through --set."""
    train(tmp_path / "catconv", *TINY_SR, "model.fusion='catconv'", "run.iterations=1")
    train(tmp_path / "dafi", *TINY_SR, "run.iterations=1")
    catconv = tmp_path / "catconv" / "checkpoints" / "iter_00000001.pt"
    dafi = tmp_path / "dafi" / "generator.pth"
    out = tmp_path / "table3"
    sets = ["testsets.0.source=synthetic", "testsets.0.count=2", "testsets.0.workers=1", "experiment.metrics=['psnr']",
            "experiment.bootstrap=20", "experiment.batch_size=2",
            f"methods.0.weights={catconv}", "methods.0.resize_output=bicubic",
            f"methods.1.weights={dafi}", "methods.1.resize_output=bicubic"]
    args = ["run", "table3_fusion", "--out", str(out), "--device", "cpu"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    rows = [r for r in read_jsonl(out / "results.jsonl") if r["metric"] == "psnr"]
    assert {r["method"] for r in rows} == {"Panini-Net with Cat-Conv", "Panini-Net with DAFI"}
    assert all(r["n"] == 2 and 5 < r["value"] < 60 for r in rows)
    info = read_json(out / "run.json")
    methods = json.dumps(info["methods"])
    assert str(catconv) in methods and str(dafi) in methods  # the weights' paths ...
    assert all(m.get("weights_hash") for m in info["methods"].values())  # ... and hashes are recorded


def test_bench_methods_says_sizes_follow_the_file(capsys):
    assert main(["methods"]) == 0
    assert "brings its own configuration" in capsys.readouterr().out
