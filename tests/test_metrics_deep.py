"""LPIPS/FID/KID and folder evaluation against the reference libraries, with seeded random weights.

The random networks sit in a temporary TORCH_HOME under the libraries' own file names (conftest
`random_weights`), so pytorch-fid's and lpips' real loading code runs; the FID Inception is
BN-calibrated so its features are O(1) and a wrong FID cannot pass as ~0.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from metric_weights import StandInFeatures, smooth_images
from PIL import Image

from bench.cli import main
from bench.errors import BenchError
from bench.metrics import create_metric
from bench.metrics.evaluate import evaluate_folders
from bench.metrics.fid import InceptionDistances, fid_from_features

N, SIZE = 3, 64


def _save(folder, images, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    for k, x in enumerate(images):
        name = names[k] if names else f"{k:03d}.png"
        Image.fromarray((x.permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    generator = torch.Generator().manual_seed(11)
    gt = smooth_images(N, SIZE, generator)
    pred = (0.7 * gt + 0.3 * smooth_images(N, SIZE, generator)).clamp(0, 1)
    return _save(root / "gt", gt), _save(root / "pred", pred)


def _by_metric(rows):
    return {row["metric"]: row for row in rows}


def _pytorch_fid_features(folder):
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([3]).eval()  # loads from $TORCH_HOME/hub/checkpoints like the CLI does
    return get_activations(sorted(folder.glob("*.png")), model, batch_size=50, dims=2048, device="cpu", num_workers=0)


@pytest.mark.slow  # three Inception passes on the CPU: ~20-35 s
def test_fid_kid_equal_pytorch_fid_and_cleanfid_and_cache_hits(metric_env, folders):
    from cleanfid.fid import kernel_distance
    from pytorch_fid.fid_score import calculate_frechet_distance

    gt_dir, pred_dir = folders
    registry = metric_env["registry"]
    rows = _by_metric(evaluate_folders(gt_dir, pred_dir, metrics=["fid", "kid"], registry=registry)[0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's disp deprecation, singular-matrix warnings
        gt_act, pred_act = _pytorch_fid_features(gt_dir), _pytorch_fid_features(pred_dir)
        reference_fid = calculate_frechet_distance(
            pred_act.mean(0), np.cov(pred_act, rowvar=False), gt_act.mean(0), np.cov(gt_act, rowvar=False)
        )
    # Naive random init gives |features| ~ 1e-8 (spec 1.4); calibrated ones are O(0.1-1) and differ per image.
    assert np.abs(gt_act).mean() > 0.05 and gt_act.std(0).mean() > 0.01, "Inception features collapsed"
    assert reference_fid > 1.0
    assert rows["fid"]["value"] == pytest.approx(reference_fid, rel=1e-4)
    assert rows["kid"]["value"] == pytest.approx(kernel_distance(pred_act, gt_act), rel=1e-4)
    assert rows["fid"]["ci_low"] <= rows["fid"]["ci_high"]
    assert rows["fid"]["protocol"]["weights_sha256"] == registry.get("inception-fid").sha256
    assert abs(fid_from_features(gt_act, gt_act)) < 1e-6
    assert fid_from_features(gt_act, pred_act) == pytest.approx(fid_from_features(pred_act, gt_act), rel=1e-9)

    again = _by_metric(evaluate_folders(gt_dir, pred_dir, metrics=["fid", "kid"], registry=registry)[0])
    assert rows["fid"]["gt_cache"] == "written" and again["fid"]["gt_cache"] == "hit"
    assert again["fid"]["value"] == rows["fid"]["value"] and again["kid"]["value"] == rows["kid"]["value"]


def test_inception_states_merge_and_reference_statistics(tmp_path):
    whole = InceptionDistances(outputs=("fid", "kid"), extractor=StandInFeatures(), ci_resamples=0)
    generator = torch.Generator().manual_seed(4)
    gt_feats = whole.features(smooth_images(N, 32, generator))
    pred_feats = whole.features(smooth_images(N, 32, generator))
    whole.add_features(pred_feats, gt_feats)
    shards = []
    for k in range(2):
        shard = InceptionDistances(outputs=("fid", "kid"), extractor=whole.extractor, ci_resamples=0)
        shard.add_features(pred_feats[k::2], gt_feats[k::2], [f"{i}" for i in range(k, N, 2)])
        shards.append(shard)
    shards[0].merge(shards[1].state_dict())
    merged, expected = _by_metric(shards[0].compute()), _by_metric(whole.compute())
    assert merged["fid"]["value"] == pytest.approx(expected["fid"]["value"], rel=1e-9)
    assert merged["kid"]["value"] == pytest.approx(expected["kid"]["value"], rel=1e-9)

    # FID against stored statistics (pytorch-fid .npz and BasicSR .pth) equals FID against the GT features.
    mu, sigma = gt_feats.astype(np.float64).mean(0), np.cov(gt_feats.astype(np.float64), rowvar=False)
    np.savez(tmp_path / "ref.npz", mu=mu, sigma=sigma)
    torch.save({"mean": mu, "cov": sigma}, tmp_path / "ref.pth")
    for name in ("ref.npz", "ref.pth"):
        stats = InceptionDistances(
            outputs=("fid",), reference=str(tmp_path / name), extractor=whole.extractor, ci_resamples=3
        )
        stats.add_features(pred_feats)
        assert stats.compute()[0]["value"] == pytest.approx(expected["fid"]["value"], rel=1e-6)
    with pytest.raises(BenchError, match="kid needs reference features"):
        InceptionDistances(outputs=("kid",), reference=str(tmp_path / "ref.npz"), extractor=whole.extractor)
    with pytest.raises(BenchError, match="at least 2 images"):
        one = InceptionDistances(outputs=("fid",), extractor=whole.extractor)
        one.add_features(pred_feats[:1], gt_feats[:1])
        one.compute()
    nan = torch.full((1, 3, 32, 32), float("nan"))
    with pytest.raises(BenchError, match="NaN"):
        whole.update(nan, nan)


def test_lpips_equals_the_lpips_package(metric_env):
    import lpips

    generator = torch.Generator().manual_seed(5)
    gt = smooth_images(2, 48, generator)
    pred = (gt + 0.1 * torch.randn(gt.shape, generator=generator)).clamp(0, 1)
    ours = create_metric("lpips", registry=metric_env["registry"])
    reference = lpips.LPIPS(net="alex", verbose=False).eval()  # the same random AlexNet via $TORCH_HOME
    with torch.no_grad():
        expected = reference(pred * 2 - 1, gt * 2 - 1).flatten().tolist()
        assert ours.update(pred, gt) == pytest.approx(expected, abs=1e-7)
        assert reference(pred, gt, normalize=True).flatten().tolist() == pytest.approx(expected, abs=1e-7)
    assert ours.protocol["weights"]["backbone"] == metric_env["registry"].get("lpips-alex").sha256
    assert ours.update(gt, gt) == [0.0, 0.0]
    noisier = [
        ours.update((gt + s * torch.randn(gt.shape, generator=generator)).clamp(0, 1), gt)[0] for s in (0.02, 0.1, 0.3)
    ]
    assert noisier == sorted(noisier) and noisier[0] > 0

    with torch.random.fork_rng():
        torch.manual_seed(3)
        rand_ours = create_metric("lpips", random_backbone=True)
        torch.manual_seed(3)
        rand_ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    with torch.no_grad():
        assert rand_ours.update(pred, gt) == pytest.approx(
            rand_ref(pred * 2 - 1, gt * 2 - 1).flatten().tolist(), abs=1e-7
        )
    with pytest.raises(BenchError, match="at least 32 px"):
        ours.update(gt[:, :, :16, :16], gt[:, :, :16, :16])


def test_missing_weights_name_artefact_url_and_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    for metric, name in (("fid", "inception-fid"), ("lpips", "lpips-alex")):
        with pytest.raises(BenchError) as info:
            create_metric(metric)
        message = str(info.value)
        assert name in message and "https://" in message and str(tmp_path / "empty" / "hub" / "checkpoints") in message


def test_folder_errors_and_policies(tmp_path, metric_env):
    generator = torch.Generator().manual_seed(2)
    images = smooth_images(3, 40, generator)
    gt = _save(tmp_path / "gt", images, ["a.png", "b.png", "c.png"])
    pred = _save(tmp_path / "pred", images[:2], ["a.png", "b.png"])
    _save(pred, images[2:], ["z.png"])
    with pytest.raises(BenchError) as info:
        evaluate_folders(gt, pred, metrics=["psnr"])
    assert "c" in str(info.value) and "z" in str(info.value) and "--allow-missing" in str(info.value)
    rows, per_image = evaluate_folders(gt, pred, metrics=["psnr"], allow_missing=True)
    assert rows[0]["n"] == 2 and rows[0]["missing_ids"] == ["c"] and rows[0]["extra_ids"] == ["z"]
    assert [p["id"] for p in per_image] == ["a", "b"]

    (pred / "z.png").unlink()
    _save(pred, smooth_images(1, 32, generator), ["c.png"])
    with pytest.raises(BenchError, match=r"c\.png is 32x32 but its GT .* is 40x40"):
        evaluate_folders(gt, pred, metrics=["psnr"])
    rows, _ = evaluate_folders(gt, pred, metrics=["psnr", "ssim"], resize_policy="bicubic")
    assert rows[0]["n"] == 3 and rows[0]["protocol"]["evaluation"]["resize_policy"] == "bicubic"
    plain = evaluate_folders(gt, gt, metrics=["ssim"])[0][0]
    assert plain["protocol_id"] != rows[1]["protocol_id"]

    (pred / "c.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(BenchError, match=r"c\.png: not a readable image"):
        evaluate_folders(gt, pred, metrics=["psnr"])

    single = tmp_path / "single"
    _save(single, images[:1], ["a.png"])
    with pytest.raises(BenchError, match="at least 2 image pairs"):
        evaluate_folders(single, single, metrics=["fid"], registry=metric_env["registry"])


def test_cli_evaluate_writes_json(tmp_path, folders, capsys):
    gt_dir, pred_dir = folders
    out = tmp_path / "scores.json"
    assert (
        main(
            [
                "evaluate",
                "--gt",
                str(gt_dir),
                "--pred",
                str(pred_dir),
                "--metrics",
                "psnr,ssim",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert [r["metric"] for r in data["results"]] == ["psnr", "ssim"]
    assert len(data["per_image"]) == 2 * N and "psnr" in capsys.readouterr().out
    assert main(["evaluate", "--gt", str(gt_dir), "--pred", str(tmp_path / "nope"), "--metrics", "psnr"]) == 2


def test_cleanfid_backend_equals_cleanfid(metric_env, folders, tmp_path):
    """Same network on both sides, so this checks clean-fid's preprocessing (PIL bicubic float resize, 0-255
    scaling) in our pipeline. KID (no sqrtm: quick) pins the features; the Frechet formula itself is checked
    against pytorch-fid's sqrtm-based function above."""
    from cleanfid.fid import get_folder_features, kernel_distance
    from cleanfid.inception_torchscript import InceptionV3W
    from metric_weights import registry_for, write_cleanfid_standin

    gt_dir, pred_dir = folders
    standin = write_cleanfid_standin(metric_env["checkpoints"])
    registry = registry_for({**metric_env["files"], "inception-cleanfid": standin})
    try:
        rows = evaluate_folders(
            gt_dir,
            pred_dir,
            metrics=["fid", "kid"],
            registry=registry,
            options={"fid": {"backend": "clean-fid", "ci_resamples": 0}},
        )[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = InceptionV3W(str(standin.parent), download=False)
            feats = [
                get_folder_features(
                    str(d),
                    model,
                    num_workers=0,
                    batch_size=8,
                    device=torch.device("cpu"),
                    mode="clean",
                    verbose=False,
                )
                for d in (pred_dir, gt_dir)
            ]
    finally:
        standin.unlink()
    rows = _by_metric(rows)
    assert rows["fid"]["protocol"]["backend"].startswith("clean-fid") and rows["fid"]["value"] > 1.0
    assert rows["fid"]["value"] == pytest.approx(fid_from_features(*feats), rel=1e-4)
    assert rows["kid"]["value"] == pytest.approx(kernel_distance(*feats), rel=1e-4)
