"""Training data layouts, validation sets, schedules, threads and progress (issue 13). Tiny, CPU, synthetic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BenchError
from bench.methods.train import checkpoint as ckpt
from bench.methods.train.config import load_config
from bench.methods.train.data import split_data
from bench.methods.train.loop import resolve_threads, run_task
from conftest import tiny_train_config as tiny

torch.set_num_threads(1)


def write_pairs(root, count: int, lq_size: int = 64, gt_size: int = 128) -> dict[str, str]:
    """`count` synthetic GT faces and their LQ (a plain area downscale), as `{ lq = DIR, gt = DIR }`."""
    from bench.datasets.synthetic import synthetic_face

    lq_dir, gt_dir = root / "lq", root / "gt"
    lq_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    for i in range(count):
        gt = Image.fromarray(synthetic_face(i, gt_size))
        gt.save(gt_dir / f"{i:05d}.png")
        gt.resize((lq_size, lq_size), Image.BOX).save(lq_dir / f"{i:05d}.png")
    return {"lq": str(lq_dir), "gt": str(gt_dir)}


def pairs_value(folders: dict[str, str]) -> str:
    return f"{{ lq = '{folders['lq']}', gt = '{folders['gt']}' }}"


# -- official pair layout --------------------------------------------------------------------------


def test_pair_folders_flip_lq_and_gt_together(tmp_path):
    from bench.methods.train.panini import PaniniPairs

    folders = write_pairs(tmp_path, 6)
    config = tiny("panini", tmp_path / "run", f"data.pairs={pairs_value(folders)}", "data.val_source='synthetic'")
    split = split_data(config.data, seed=0)
    assert split.train_is_pairs and not split.val_is_pairs and len(split.train) == 6
    data = PaniniPairs(split.train, None, 64, flip=True, seed=0)
    flips = 0
    for epoch in range(4):
        for i in range(6):
            item = data[(epoch, i)]
            lq = np.array(Image.open(f"{folders['lq']}/{i:05d}.png"))
            gt = np.array(Image.open(f"{folders['gt']}/{i:05d}.png"))
            got_lq, got_gt = item["lq"].permute(1, 2, 0).numpy(), item["gt"].permute(1, 2, 0).numpy()
            flipped = np.array_equal(got_gt, gt[:, ::-1])
            assert flipped or np.array_equal(got_gt, gt)
            assert np.array_equal(got_lq, lq[:, ::-1] if flipped else lq)  # one decision for both images
            flips += flipped
    assert 4 <= flips <= 20  # about half of 24


def test_pair_folders_train_and_carve_their_own_validation(tmp_path):
    folders = write_pairs(tmp_path, 8)
    config = tiny("panini", tmp_path / "run", f"data.pairs={pairs_value(folders)}", "data.val_source=''",
                  "data.val_count=2", "run.iterations=2", "run.checkpoint_every=2", "loss.perceptual=0.0")
    summary = run_task("panini", config)
    assert summary["finished"]
    record = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert record["count"] == 2 and record["from"].startswith("carved")
    split = split_data(config.data, seed=0)
    held_out = {split.val.name(i) for i in range(len(split.val))}
    assert held_out == set(record["items"])
    assert held_out.isdisjoint(split.train.name(i) for i in range(len(split.train)))
    assert split.val_is_pairs and len(split.train) == 6
    psnr = [r["val/psnr"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
            if "val/psnr" in r]
    assert len(psnr) == 2 and all(math.isfinite(v) for v in psnr)


def test_pair_folder_mistakes_name_the_key(tmp_path):
    folders = write_pairs(tmp_path, 3)
    moved = tmp_path / "lq" / "00001.png"
    moved.rename(tmp_path / "aside.png")
    with pytest.raises(BenchError, match=r"data\.pairs: 1 file\(s\) in data\.pairs\.gt .*00001"):
        split_data(tiny("panini", tmp_path, f"data.pairs={pairs_value(folders)}").data, seed=0)
    (tmp_path / "aside.png").rename(moved)
    with pytest.raises(BenchError, match=r"data\.pairs\.lq: .*64x64, but data\.lq_size = 32"):
        split_data(tiny("panini", tmp_path, f"data.pairs={pairs_value(folders)}", "data.lq_size=32").data, seed=0)
    with pytest.raises(BenchError, match=r"data\.pairs must be \{ lq = DIR, gt = DIR \}"):
        split_data(tiny("panini", tmp_path, f"data.pairs={{ lq = '{folders['lq']}' }}").data, seed=0)
    with pytest.raises(BenchError, match="UDRL makes its pairs on the fly"):
        split_data(tiny("udrl", tmp_path, f"data.pairs={pairs_value(folders)}").data, seed=0, pairs_allowed=False)


@pytest.mark.parametrize("task", ["panini", "udrl"])
def test_bad_data_fails_before_the_model_is_built(task, tmp_path, monkeypatch):
    """Panini: a missing validation folder; UDRL: pair folders (it makes its pairs on the fly)."""
    from bench.distributed import Dist
    from bench.methods import panini
    from bench.methods.train import udrl
    from bench.methods.train.panini import PaniniTrainer

    def no_build(*args, **kwargs):
        raise AssertionError("the model was built before the data was checked")

    if task == "panini":
        monkeypatch.setattr(panini.PaniniNet, "__init__", no_build)
        trainer, setting = PaniniTrainer, f"data.val_source='{tmp_path / 'no-such-folder'}'"
        message = r"^data\.val_source: folder .*no-such-folder does not exist"
    else:
        monkeypatch.setattr(udrl.MoCo, "__init__", no_build)
        trainer, setting = udrl.UdrlTrainer, f"data.pairs={pairs_value(write_pairs(tmp_path, 3))}"
        message = "UDRL makes its pairs on the fly"
    with pytest.raises(BenchError, match=message):
        trainer(tiny(task, tmp_path, setting), Dist.from_env("cpu"))


# -- the carved validation set ---------------------------------------------------------------------


def test_carved_validation_is_seeded_disjoint_and_excluded(tmp_path):
    def split(seed: int, count: int = 20):
        config = tiny("panini", tmp_path, f"data.synthetic_count={count}", "data.val_source=''", "data.val_count=5")
        return split_data(config.data, seed=seed)

    a, b, other = split(0), split(0), split(1)
    names = [[s.val.name(i) for i in range(len(s.val))] for s in (a, b, other)]
    assert len(a.val) == 5 and len(a.train) == 15
    assert names[0] == names[1] and names[0] != names[2]
    assert set(names[0]).isdisjoint(a.train.name(i) for i in range(len(a.train)))
    assert a.record["items"] == names[0] and a.record["seed"] == [0, 2]
    with pytest.raises(BenchError, match=r"not enough to carve data\.val_count = 5"):
        split(0, count=5)


# -- schedules -------------------------------------------------------------------------------------


def test_official_moco_schedules_change_once_per_epoch():
    from bench.methods.train.udrl import lr_at

    official = load_config("udrl", "train-udrl-official").optim
    assert (official.schedule, official.milestones, official.gamma) == ("step", [120, 160], 0.1)
    steps, total = 10, 2000  # 200 epochs of 10 steps
    lr = [lr_at(official, it, total, steps) for it in range(total)]
    assert lr[1199] == pytest.approx(0.03) and lr[1200] == pytest.approx(0.003)
    assert lr[1599] == pytest.approx(0.003) and lr[1600] == pytest.approx(0.0003) and lr[-1] == lr[1600]
    cosine_epoch = type(official)(schedule="cosine-epoch")
    lr = [lr_at(cosine_epoch, it, total, steps) for it in range(total)]
    assert lr[0] == lr[9] == pytest.approx(0.03) and lr[10] < lr[9]
    assert lr[100 * steps] == pytest.approx(0.015)  # main_moco.py --cos: 0.5 (1 + cos(pi epoch / epochs))
    per_iteration = type(official)(schedule="cosine")
    assert lr_at(per_iteration, 5, total, steps) < lr_at(per_iteration, 4, total, steps)


# -- threads and progress --------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "local", "expected"), [(0, 1, 8), (1, 1, 8), (4, 1, 2), (3, 1, 2), (16, 1, 1),
                                                            (2, 2, 2)])
def test_threads_default_to_cpus_over_workers(monkeypatch, workers, local, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))
    config = load_config("udrl", "train-udrl-tiny", [f"run.workers={workers}", "run.threads=0"])
    assert resolve_threads(config).run.threads == expected
    assert resolve_threads(load_config("udrl", "train-udrl-tiny", ["run.threads=3"])).run.threads == 3
    with pytest.raises(BenchError, match="run.threads"):
        resolve_threads(load_config("udrl", "train-udrl-tiny", ["run.threads=-1"]))


def test_off_terminal_progress_lines_eta_and_exports_at_every_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0}, raising=False)  # automatic threads: 1
    config = tiny("udrl", tmp_path, "run.progress=true", "run.threads=0", "run.iterations=4", "run.log_every=2",
                  "run.checkpoint_every=2", "run.val_every=0", "run.stop_after=2")
    threads_before = torch.get_num_threads()
    summary = run_task("udrl", config)
    assert torch.get_num_threads() == threads_before  # restored after the run
    recorded = (tmp_path / "config.toml").read_text()
    assert "\nthreads = 1\n" in recorded  # the resolved count
    # stopped (not finished) at a checkpoint: the DRE is exported already
    assert not summary["finished"] and summary["artefacts"]["dre"].endswith("dre.pth")
    assert torch.load(tmp_path / "dre.pth", weights_only=True)["iteration"] == 2
    run_task("udrl", tiny("udrl", tmp_path, "run.progress=true", "run.iterations=4", "run.log_every=2",
                          "run.checkpoint_every=2", "run.val_every=0"), resume=True)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("bench train udrl: iteration")]
    assert [line.split()[4] for line in lines] == ["2/4", "4/4"]
    assert all("loss=" in line and "it/s" in line and "ETA " in line for line in lines)
    assert lines[-1].endswith("ETA 00:00:00")
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [2, 4] and rows[0]["eta_s"] > 0 and rows[1]["eta_s"] == 0
    saved = torch.load(tmp_path / "dre.pth", weights_only=True)
    assert saved["iteration"] == 4
    final = ckpt.load(tmp_path / "checkpoints" / "iter_00000004.pt")["modules"]["moco"]
    assert torch.equal(saved["state_dict"]["module.encoder_q.E.0.weight"], final["encoder_q.body.0.weight"])


def test_degraded_items_record_the_parameters_they_were_made_with(tmp_path):
    """Each on-the-fly item carries its Eq. (10) parameters (what `benchmarks/udrl_to_panini.py` correlates the
    DAFI masks with): degrading the GT with them again gives the same LQ, and no two items share them."""
    from bench.distributed import Dist
    from bench.methods.train.data import collate, resize_to, to_tensor
    from bench.methods.train.panini import PaniniTrainer

    config = load_config("panini", "train-panini-tiny", [f"run.out_dir='{tmp_path}'", "data.val_count=4",
                                                         "run.seed=3"])
    trainer = PaniniTrainer(config, Dist.from_env("cpu"))
    validation = trainer.validation_set()
    train_pairs = trainer.dataset()
    items = validation + [train_pairs[(0, 0)], train_pairs[(0, 1)]]
    assert len({item["degradation"]["r"] for item in items}) == len(items)
    for item in items:
        again = resize_to(trainer.preset.apply(item["gt"].permute(1, 2, 0).numpy(), item["degradation"]),
                          config.data.lq_size)
        assert torch.equal(to_tensor(again), item["lq"])
    assert collate(validation[:2])["degradation"] == [validation[0]["degradation"], validation[1]["degradation"]]
