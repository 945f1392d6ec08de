"""The speed scripts in benchmarks/: they measure what they say and leave the library as they found it."""

from __future__ import annotations

import importlib.util
import json

import pytest

from bench.datasets import testset
from conftest import REPO


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_bench", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_benchmark_times_each_step_and_restores_the_builder(capsys):
    bench = load_script("degrade")
    originals = (testset.encode_png, testset.decode_rgb8, testset.atomic_write_bytes)
    bench.main(["--images", "2", "--repeats", "1", "--presets", "sr16"])
    assert (testset.encode_png, testset.decode_rgb8, testset.atomic_write_bytes) == originals
    entry = json.loads(capsys.readouterr().out)["presets"]["sr16"]
    stages = entry["stages_ms_per_image"]
    assert {"decode", "hash", "png_encode_1024px", "png_encode_64px", "resize_pil_bilinear", "write"} <= set(stages)
    assert all(v >= 0 for v in stages.values()) and abs(sum(entry["stages_share"].values()) - 1) < 0.01
    assert entry["plain_loop_img_per_s"] > 0 and len(entry["runs_img_per_s"]["build_2_workers"]) == 1


def test_stage_timer_counts_nested_steps_once():
    bench = load_script("degrade")
    timer = bench.StageTimer()
    inner = timer.wrap("resize", lambda: None)
    outer = timer.wrap("downsample", lambda: inner())
    outer()
    inner()
    assert set(timer.seconds) == {"downsample", "resize"}
    assert timer.seconds["downsample"] >= 0 and timer.seconds["resize"] >= 0


def test_projection_fits_fixed_plus_per_image_cost():
    project = load_script("run").project
    assert project([2, 4], [10.0, 14.0], 1000) == pytest.approx(6.0 + 2.0 * 1000)
    assert project([2], [10.0], 1000) == pytest.approx(5000.0)  # proportional: fixed cost scaled too
    assert project([2, 4], [10.0, 14.0], 4) == 14.0  # measured
    assert project([2, 4], [10.0, 9.0], 1000) == pytest.approx(10.0)  # noise never gives a negative slope


@pytest.mark.parametrize("arch", ["tiny", "official"])
def test_paper_experiments_keep_the_bundled_protocol_with_random_weights(arch):
    bench = load_script("run")
    exp, bundled = bench.paper_experiment("table3_fusion", 3, arch)
    assert bundled == {"celeba-hq-sr16": 1000}
    (ts,) = exp.config["testsets"]
    assert (ts["source"], ts["count"], ts["preset"], ts["workers"]) == ("synthetic", 3, "sr16", 4)
    for method in exp.config["methods"]:
        assert method["options"] == {"config": arch, "random_init_seed": 0}
        assert not method.get("weights")  # the Cat-Conv checkpoint variable is not needed
        assert (method.get("resize_input") == "area") == (arch == "tiny")
    assert exp.config["experiment"]["metrics"] == ["psnr", "fid"]
    exp, bundled = bench.paper_experiment("fig7_dissection", None, arch)
    assert exp.config["testsets"][0]["count"] == bundled["celeba-hq-theta"] == 4


@pytest.mark.slow  # ~10 s idle, 60 s measured on the loaded 2-core machine
def test_paper_timing_runs_an_experiment_by_stage(tmp_path):
    """Table 4 at 2 source images (8 LQ), tiny random Panini-Net: every stage timed, projected to 100 images."""
    bench = load_script("run")
    result = bench.time_paper(tmp_path, "cpu", [2], "tiny", ["table4_theta"])
    entry = result["experiments"]["table4_theta"]
    (run,) = entry["runs"]
    assert run["status"] == "complete" and run["images"] == 2 and entry["bundled_images"] == 100
    assert run["stages_s"]["testsets"] > 0 and run["stages_s"]["analysis"] > 0 and run["stages_s"]["report"] > 0
    assert entry["projected_s"]["analysis"] == pytest.approx(run["stages_s"]["analysis"] * 50, abs=0.1)
    assert entry["projection"].startswith("proportional") and result["projected_all_s"] > 0


def test_udrl_chain_stand_in_prior_is_what_both_arms_load(tmp_path):
    """`udrl_to_panini.pretrain_prior` writes the stand-in run's decoder and discriminator in the layout
    `model.prior` / `model.discriminator` read strictly: a trainer built on it holds exactly those weights."""
    import torch

    from bench.distributed import Dist
    from bench.methods.train.checkpoint import checkpoint_path
    from bench.methods.train.config import load_config
    from bench.methods.train.panini import PaniniTrainer

    path = load_script("udrl_to_panini").pretrain_prior(tmp_path, 2)
    config = load_config("panini", "train-panini-tiny", [f"run.out_dir='{tmp_path / 'arm'}'", f"model.prior='{path}'",
                                                         f"model.discriminator='{path}'"])
    trainer = PaniniTrainer(config, Dist.from_env("cpu"))
    saved = torch.load(checkpoint_path(tmp_path / "prior" / "checkpoints", 2), weights_only=True)["modules"]
    decoder = trainer.G.generator.state_dict()
    assert decoder and all(torch.equal(v, saved["generator"][f"generator.{k}"]) for k, v in decoder.items())
    assert all(torch.equal(v, saved["discriminator"][k]) for k, v in trainer.D.state_dict().items())


def test_udrl_chain_combines_parallel_runs_into_one_summary(tmp_path, capsys):
    """Seeds run in separate processes merge into one paired summary; mismatched settings (the prior is named by
    its hash: only the process that pretrained it records its iterations) or a repeated seed are refused."""
    script = load_script("udrl_to_panini")
    info = {"udrl_iterations": 400, "panini_iterations": 2000, "prior_sha256": "ab12", "prior_iterations": 0}

    def report(path, gains, **changes):
        rows = [{"seed": seed, "gain_db": gain} for seed, gain in gains.items()]
        path.write_text(json.dumps({"info": info | changes, "results": rows}))
        return str(path)

    a = report(tmp_path / "a.json", {2: 0.5, 0: -0.1}, prior_iterations=1500)
    b = report(tmp_path / "b.json", {1: 0.3})
    script.main(["--combine", a, b])
    out = json.loads(capsys.readouterr().out)
    assert out["info"]["prior_iterations"] == 1500
    assert [row["seed"] for row in out["results"]] == [0, 1, 2]
    assert out["summary"]["mean_gain_db"] == 0.233 and out["summary"]["seeds_with_gain"] == 2
    assert out["summary"]["sign_test_p"] == 1.0  # 2 of 3: P(|wins - 1.5| >= 0.5) under p = 1/2
    assert script.paired_summary([0.1] * 8)["sign_test_p"] == 0.00781  # 2 / 2**8
    assert out["summary"]["ci95_gain_db"][0] < 0 < out["summary"]["ci95_gain_db"][1]
    with pytest.raises(SystemExit, match="panini_iterations"):
        script.main(["--combine", a, report(tmp_path / "c.json", {3: 0.1}, panini_iterations=600)])
    with pytest.raises(SystemExit, match="prior_sha256"):
        script.main(["--combine", a, report(tmp_path / "e.json", {3: 0.1}, prior_sha256="cd34")])
    with pytest.raises(SystemExit, match="repeat a seed"):
        script.main(["--combine", a, report(tmp_path / "d.json", {2: 0.1})])


def test_udrl_chain_parallel_seeds_give_the_serial_results(tmp_path, capsys):
    """`--jobs 2` (one spawned single-threaded process per seed, as a user runs the script) reports exactly
    what one process reports for the same seeds; only the timings differ."""
    import subprocess
    import sys

    tiny = ["--udrl-iterations", "2", "--panini-iterations", "2", "--val-count", "2", "--seeds", "0", "1",
            "--prior-iterations", "0"]
    parallel = subprocess.run([sys.executable, str(REPO / "benchmarks" / "udrl_to_panini.py"), "--out",
                               str(tmp_path / "parallel"), *tiny, "--jobs", "2"],
                              capture_output=True, text=True, check=True)
    load_script("udrl_to_panini").main(["--out", str(tmp_path / "serial"), *tiny])

    def untimed(report):
        return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in report["results"]]

    serial = json.loads(capsys.readouterr().out)
    assert [row["seed"] for row in serial["results"]] == [0, 1]
    assert untimed(json.loads(parallel.stdout)) == untimed(serial)


def test_udrl_chain_calibrated_control_and_reuse_of_finished_runs(tmp_path, capsys):
    """--calibrated-control adds an arm whose DRE keeps its random weights (UDRL at lr = 0) but has the LQ
    images' BatchNorm statistics; running the same command again reuses every finished run (same rows),
    and a changed setting over the same folder is refused instead of mixing runs."""
    import torch

    from bench.distributed import Dist
    from bench.errors import BenchError
    from bench.methods.train.config import load_config
    from bench.methods.train.udrl import UdrlTrainer

    script = load_script("udrl_to_panini")
    tiny = ["--out", str(tmp_path), "--udrl-iterations", "2", "--panini-iterations", "2", "--val-count", "2",
            "--seeds", "0", "--calibrated-control", "--prior-iterations", "0"]
    script.main(tiny)
    first = json.loads(capsys.readouterr().out)
    row = first["results"][0]
    assert {"calibrated_dre_val_psnr", "gain_over_calibrated_db", "faces_with_gain_over_calibrated"} <= set(row)
    assert first["summary_over_calibrated"]["seeds"] == 1

    run_dir = tmp_path / "seed0" / "udrl_lr0"
    saved = torch.load(run_dir / "dre.pth", weights_only=True)["state_dict"]
    fresh = UdrlTrainer(load_config("udrl", str(run_dir / "config.toml")), Dist.from_env("cpu"))  # the initial weights
    initial = fresh.moco.encoder_q.state_dict()
    conv = [k for k in initial if k.endswith("weight") and initial[k].dim() == 4]
    assert conv and all(torch.equal(initial[k], saved[f"module.encoder_q.{k.replace('body.', 'E.')}"]) for k in conv)
    means = [k for k in initial if k.endswith("running_mean")]
    assert not any(torch.equal(initial[k], saved[f"module.encoder_q.{k.replace('body.', 'E.')}"]) for k in means)

    script.main(tiny)
    again = json.loads(capsys.readouterr().out)["results"][0]
    assert {k: v for k, v in again.items() if not k.endswith("_s")} == {
        k: v for k, v in row.items() if not k.endswith("_s")}
    with pytest.raises(BenchError, match="different config"):
        script.main([*tiny[:5], "3", *tiny[6:]])
