"""Training (issue 6): configs, UDRL, Panini fine-tuning, exact resume, DDP, bad input. Tiny, CPU, synthetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BenchError
from bench.methods.train import checkpoint as ckpt
from bench.methods.train.config import (
    CONFIG_DIR,
    TASKS,
    dump_toml,
    fingerprint,
    from_dict,
    load_config,
)
from bench.methods.train.loop import run_task
from conftest import REPO
from conftest import tiny_train_config as tiny

torch.set_num_threads(1)


def log_rows(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]


# -- configs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[run]\nitertions = 5\n", "'run.itertions'"),
        ("[optim]\nlr = 'fast'\n", "'optim.lr' must be a number"),
        ("[run]\nbatch_size = 2.5\n", "'run.batch_size' must be an integer"),
        ("[model]\nwidths = [8, 'a', 16]\n", "'model.widths[1]'"),
        ("[run]\namp = 'fp8'\n", "'run.amp' is 'fp8'; choose one of 'none'"),
        ("run = 3\n", "'run' must be a table"),
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("task = 'panini'\n", "run `bench train panini`"),
        ("[rn]\niterations = 5\n", "unknown key 'rn'; did you mean 'run'"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BenchError, match="bad.toml") as info:
        load_config("udrl", str(path))
    assert needle in str(info.value)


def test_bundled_presets_are_complete_plain_data():
    files = sorted(CONFIG_DIR.glob("train-*.toml"))
    assert len(files) >= 8
    for path in files:
        task = path.read_text().split('task = "')[1].split('"')[0]
        config = load_config(task, path.stem)
        # complete: the file alone gives the config, defaults are never needed (no hidden inheritance)
        import tomllib

        raw = tomllib.loads(path.read_text())
        for section, table in raw.items():
            if isinstance(table, dict):
                declared = {f for f in type(getattr(config, section)).__dataclass_fields__}
                assert set(table) == declared, f"{path.name} [{section}] misses {declared - set(table)}"
        assert fingerprint(from_dict(task, tomllib.loads(dump_toml(config)))) == fingerprint(config)
    paper = load_config("panini", "train-panini-mfr-paper")
    official = load_config("panini", "train-panini-mfr-official")
    assert (paper.run.iterations, paper.run.batch_size, paper.model.dre_trainable) == (600_000, 8, False)
    assert (official.run.iterations, official.model.dre_trainable) == (800_000, True)
    assert (official.optim.lr, official.optim.min_lr, official.loss.perceptual) == (1e-4, 1e-7, 1e-2)
    udrl = load_config("udrl", "train-udrl-official")
    m = udrl.model
    assert (m.queue, m.momentum, m.temperature, m.input_size, udrl.optim.lr) == (8192, 0.999, 0.07, 256, 0.03)
    assert set(TASKS) == {"udrl", "panini"}


def test_set_overrides_use_the_one_engine():
    config = load_config("panini", "train-panini-tiny", ["run.iterations=7", "model.options.out_size=64"])
    assert config.run.iterations == 7 and config.model.options["out_size"] == 64
    with pytest.raises(BenchError, match="unknown key 'optm'; did you mean 'optim'"):
        load_config("panini", "train-panini-tiny", ["optm.lr=1"])
    with pytest.raises(BenchError, match="'run.iterations' must be an integer, got 'many'"):
        load_config("panini", "train-panini-tiny", ["run.iterations=many"])


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[optim]\nlrr = 1\n")
    result = subprocess.run([sys.executable, "-m", "bench", "train", "udrl", "--config", str(path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'optim.lrr'" in result.stderr


# -- UDRL ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def udrl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("udrl")
    summary = run_task("udrl", tiny("udrl", out))
    return out, summary


def test_udrl_30_steps_lower_infonce_and_separate_degradations(udrl_run):
    out, summary = udrl_run
    assert summary["finished"] and summary["iterations"] == 30
    val = {row["iteration"]: row for row in log_rows(out) if "val/infonce" in row}
    before, after = val[0], val[30]
    assert after["val/infonce"] < before["val/infonce"] - 0.05
    # same-degradation pairs (different faces) are closer than different-degradation pairs
    assert after["val/pos_neg_distance_ratio"] < 0.9
    assert after["val/pos_neg_distance_ratio"] < before["val/pos_neg_distance_ratio"] - 0.1


def test_saved_dre_loads_into_the_mfr_model(udrl_run):
    from bench.methods.panini import PaniniNet, tiny_config
    from bench.methods.panini_official import load_moco_dre

    out, summary = udrl_run
    saved = torch.load(summary["artefacts"]["dre"], weights_only=True)
    keys = list(saved["state_dict"])
    assert keys[:2] == ["module.queue", "module.queue_ptr"] and keys[2].startswith("module.encoder_q.E.0.")
    model = PaniniNet(tiny_config("mfr", dre_widths=(8, 16, 16)))
    load_moco_dre(model, summary["artefacts"]["dre"])
    trained = ckpt.load(ckpt.list_checkpoints(out / "checkpoints")[-1])["modules"]["moco"]
    for name, value in model.dre.state_dict().items():
        assert torch.equal(value, trained[f"encoder_q.{name}"]), name
    # and the Panini trainer takes it as model.dre
    from bench.distributed import Dist
    from bench.methods.train.panini import PaniniTrainer

    config = tiny("panini", out / "panini", "loss.perceptual=0.0", f"model.dre='{summary['artefacts']['dre']}'")
    trainer = PaniniTrainer(config, Dist.from_env("cpu"))
    assert all(torch.equal(v, trained[f"encoder_q.{k}"]) for k, v in trainer.G.dre.state_dict().items())


def test_fixed_dre_reaches_the_exported_restorer_unchanged(udrl_run):
    """The paper's protocol (`model.dre_trainable = false`): after training steps the DRE, BatchNorm
    statistics included, is still the UDRL encoder in `generator.pth`, and that file reproduces the
    run's last held-out PSNR face by face."""
    from bench.distributed import Dist
    from bench.methods.train.panini import PaniniTrainer

    out, summary = udrl_run
    config = tiny("panini", out / "panini-fixed", "loss.perceptual=0.0", "model.dre_trainable=false",
                  f"model.dre='{summary['artefacts']['dre']}'", "run.iterations=3", "run.checkpoint_every=3",
                  "run.val_every=3", "data.val_count=3")
    generator = run_task("panini", config)["artefacts"]["generator"]
    trained = ckpt.load(ckpt.list_checkpoints(out / "checkpoints")[-1])["modules"]["moco"]
    exported = torch.load(generator, weights_only=True)["state_dict"]
    dre = {k.removeprefix("dre."): v for k, v in exported.items() if k.startswith("dre.")}
    assert any("running_mean" in k for k in dre)
    assert dre and all(torch.equal(v, trained[f"encoder_q.{k}"]) for k, v in dre.items())
    trainer = PaniniTrainer(config, Dist.from_env("cpu"))
    trainer.G.load_state_dict(exported)
    psnrs, rows = trainer.validation_psnrs()
    assert len(psnrs) == 3 and len(rows) == 3
    logged = [r["val/psnr"] for r in log_rows(out / "panini-fixed") if "val/psnr" in r][-1]
    assert np.mean(psnrs) == pytest.approx(logged, abs=1e-9)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from bench.methods.train.udrl import UdrlTrainer

    step = UdrlTrainer.train_step

    def poisoned(self, batch, iteration):
        if iteration == 6:  # the 7th step sees a NaN pixel, which propagates through the real model
            batch["query"] = batch["query"].float()
            batch["query"][0, 0, 0, 0] = float("nan")
        return step(self, batch, iteration)

    monkeypatch.setattr(UdrlTrainer, "train_step", poisoned)
    config = tiny("udrl", tmp_path, "run.checkpoint_every=5", "run.val_every=0")
    with pytest.raises(BenchError, match=r"non-finite loss at iteration 7.*iter_00000005\.pt is kept"):
        run_task("udrl", config)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["iter_00000005.pt"]
    assert not (tmp_path / "final.json").exists()


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    from bench.datasets.synthetic import synthetic_face

    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    for i in range(18):
        Image.fromarray(synthetic_face(i, 64)).save(folder / "sub" / f"{i:03d}.png")
    good = (folder / "sub" / "000.png").read_bytes()
    (folder / "sub" / "005x.png").write_bytes(good[: len(good) // 3])  # truncated
    (folder / "sub" / "009x.png").write_text("not an image")
    config = tiny("udrl", tmp_path / "run", f"data.source='{folder}'", "run.iterations=3", "run.val_every=0",
                  "run.workers=1")
    summary = run_task("udrl", config)
    assert summary["finished"]
    skipped = " ".join(summary["skipped_images"])
    assert len(summary["skipped_images"]) == 2 and "005x.png" in skipped and "009x.png" in skipped


# -- Panini ----------------------------------------------------------------------------------------


def test_panini_30_steps_lower_l1_and_save_a_loadable_generator(tmp_path):
    from bench.methods.panini import PaniniNet
    from bench.methods.panini_official import load_official_panini
    from bench.methods.train.panini import panini_model_config

    # L1 + GAN (the VGG term is exercised by the resume test; it would triple this test's time)
    config = tiny("panini", tmp_path, "run.batch_size=1", "run.log_every=1", "data.val_count=1",
                  "loss.perceptual=0.0")
    summary = run_task("panini", config)
    rows = [r for r in log_rows(tmp_path) if "l1" in r]
    l1 = [r["l1"] for r in rows]
    assert len(l1) == 30 and all(r["gan_g"] > 0 and r["d_real"] > 0 for r in rows)
    assert np.mean(l1[-5:]) < 0.85 * np.mean(l1[:5])
    assert (tmp_path / "samples" / "iter_00000030.png").is_file()
    assert any("val/psnr" in r for r in log_rows(tmp_path))
    model = PaniniNet(panini_model_config(config.model))
    load_official_panini(model, summary["artefacts"]["generator"])
    final = ckpt.load(ckpt.list_checkpoints(tmp_path / "checkpoints")[-1])["modules"]["generator"]
    assert all(torch.equal(v, final[k]) for k, v in model.state_dict().items())


def _split_and_straight(root, task: str, total: int, *common: str) -> tuple[dict, dict]:
    """The same run twice: `total` straight, and total/2 + --resume total/2 (with a DataLoader worker)."""
    run_task(task, tiny(task, root / "straight", *common))
    run_task(task, tiny(task, root / "split", *common, f"run.stop_after={total // 2}"))
    run_task(task, tiny(task, root / "split", *common, "run.workers=1"), resume=True)
    name = f"iter_{total:08d}.pt"
    return ckpt.load(root / "straight" / "checkpoints" / name), ckpt.load(root / "split" / "checkpoints" / name)


def test_udrl_train_10_plus_resume_10_equals_train_20_exactly(tmp_path):
    common = ["run.iterations=20", "run.checkpoint_every=10", "run.log_every=1", "run.val_every=0"]
    a, b = _split_and_straight(tmp_path, "udrl", 20, *common)
    for key, value in a["modules"]["moco"].items():  # encoders, BN statistics, queue and its pointer
        assert torch.equal(value, b["modules"]["moco"][key]), key
    sa, sb = a["optimizers"]["encoder"]["state"], b["optimizers"]["encoder"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert torch.equal(a["rng"]["generators"]["shuffle"], b["rng"]["generators"]["shuffle"])
    losses = [[r["loss"] for r in log_rows(tmp_path / n) if "loss" in r] for n in ("straight", "split")]
    assert len(losses[0]) == 20 and losses[0] == losses[1]


@pytest.fixture(scope="module")
def panini_resumed(tmp_path_factory):
    """Panini (two optimisers, VGG and GAN losses on): 3 + resume 3 against 6 straight."""
    root = tmp_path_factory.mktemp("resume")
    common = ["run.iterations=6", "run.checkpoint_every=3", "run.log_every=1", "run.val_every=0"]
    return root, common, _split_and_straight(root, "panini", 6, *common)


def test_panini_resume_is_exact_for_both_networks_and_optimisers(panini_resumed):
    root, _, (a, b) = panini_resumed
    for part in ("generator", "discriminator"):
        for key, value in a["modules"][part].items():
            assert torch.equal(value, b["modules"][part][key]), f"{part}.{key}"
        sa, sb = a["optimizers"][part]["state"], b["optimizers"][part]["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    rows = [[r for r in log_rows(root / n) if "loss" in r] for n in ("straight", "split")]
    assert rows[0] == rows[1] or [r["loss"] for r in rows[0]] == [r["loss"] for r in rows[1]]
    assert all(r["perceptual"] > 0 and r["d_fake"] > 0 for r in rows[0])


def test_resume_with_a_different_config_is_an_error(panini_resumed):
    root, common, _ = panini_resumed
    changed = tiny("panini", root / "split", *common, "optim.lr=0.5")
    with pytest.raises(BenchError, match=r"different config \(changed: optim\.lr"):
        run_task("panini", changed, resume=True)
    with pytest.raises(BenchError, match="pass --resume"):
        run_task("panini", tiny("panini", root / "split", *common))


def test_perceptual_loss_uses_conv4_3_before_relu():
    from bench.methods.train.perceptual import PerceptualLoss, load_vgg16_features

    features = load_vgg16_features("random", seed=3)
    last = features[-1]
    assert isinstance(last, torch.nn.Conv2d) and (last.in_channels, last.out_channels) == (512, 512)
    assert len(features) == 22
    again = load_vgg16_features("random", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(features.parameters(), again.parameters(), strict=True))
    loss_fn = PerceptualLoss(features)
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    out = (gt + 0.1 * torch.randn(1, 3, 32, 32, generator=g)).requires_grad_(True)
    assert loss_fn(gt, gt).item() == 0.0
    loss = loss_fn(out, gt)
    loss.backward()
    assert loss.item() > 0 and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())
    # conv4_3 output can be negative (taken before ReLU)
    assert (loss_fn.phi(gt) < 0).any()


# -- distributed -----------------------------------------------------------------------------------


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from bench.methods.train.config import load_config
        from bench.methods.train.loop import run_task
        torch.set_num_threads(1)
        dist.init_process_group("gloo")
        base = ["run.progress=false", "run.val_every=0"]
        run_task("udrl", load_config("udrl", "train-udrl-tiny",
                 base + ["run.out_dir='{tmp_path}/udrl'", "run.iterations=6"]))
        run_task("panini", load_config("panini", "train-panini-tiny",
                 base + ["run.out_dir='{tmp_path}/panini'", "run.iterations=3", "loss.perceptual=0.0"]))
        dist.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run([*torchrun, str(script)],
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    for task in ("udrl", "panini"):
        final = json.loads((tmp_path / task / "final.json").read_text())
        assert final["world_size"] == 2 and final["finished"]
        assert final["ranks_identical"], final["rank_digests"]


def test_missing_or_wrong_pretrained_inputs_are_clear_errors(tmp_path):
    from bench.distributed import Dist
    from bench.methods.train.panini import PaniniTrainer

    env = Dist.from_env("cpu")
    missing = tmp_path / "nope.pth"
    with pytest.raises(BenchError, match="nope.pth"):
        PaniniTrainer(tiny("panini", tmp_path, "loss.perceptual=0.0", f"model.prior='{missing}'"), env)
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"generator_ema.something": torch.zeros(1)}}, wrong)
    with pytest.raises(BenchError, match=r"wrong\.pth.*(missing|unexpected)"):
        PaniniTrainer(tiny("panini", tmp_path, "loss.perceptual=0.0", f"model.prior='{wrong}'"), env)
    with pytest.raises(BenchError, match=r"VGG16 weights .*wrong\.pth"):
        PaniniTrainer(tiny("panini", tmp_path, f"loss.vgg='{wrong}'"), env)
    with pytest.raises(BenchError, match="has no DRE"):
        PaniniTrainer(tiny("panini", tmp_path, "loss.perceptual=0.0", "model.task='sr16'", "model.fusion='catconv'",
                           "data.lq_size=64", "data.degradation='sr16'", "data.degradation_options={}",
                           f"model.dre='{wrong}'"), env)
