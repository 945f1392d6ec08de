"""Degradation forensics: the estimators recover known parameters from sets this project builds itself.

Sets are small (512 GT -> 256 LQ, the presets with lq_size=256) so each preset's grid stays within seconds
on a loaded 2-core machine; r stays relative to the GT exactly as in the 1024 -> 512 presets.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cli import main
from bench.degradations import fit, ops
from bench.degradations.presets import PRESETS, get_preset
from bench.io import write_png
from conftest import shared_path


@pytest.fixture(scope="module")
def gt():
    from bench.datasets.synthetic import synthetic_face

    return synthetic_face(1, 512)


def _degrade(gt, preset_name, **fixed):
    preset = get_preset(preset_name, lq_size=gt.shape[0] // 2)
    params = preset.sample(np.random.default_rng(7), fixed)
    return preset, params, preset.apply(gt, params)


@pytest.mark.parametrize("quality", [5, 20, 35, 50, 86])
def test_jpeg_quality_and_grid_recovered(gt, quality):
    img = ops.resize(gt, 256, "area")
    found = fit.estimate_jpeg_grid(ops.jpeg(img, quality))
    assert found["quality"] == quality and found["offset"] == [0, 0]
    assert found["match"] > fit.MIN_JPEG_MATCH and found["best_other_offset_match"] < found["match"] / 2
    # shifted by (3, 5) pixels: the grid moves with it
    shifted = ops.jpeg(img, quality)[3:, 5:]
    assert fit.estimate_jpeg_grid(np.ascontiguousarray(shifted))["offset"] == [5, 3]


def test_no_jpeg_is_not_claimed(gt):
    found = fit.estimate_jpeg_grid(ops.resize(gt, 256, "area"))
    assert found["quality"] is None and "no 8x8" in found["reason"]


@pytest.mark.parametrize("mode", ["4:2:0", "4:4:4"])
def test_chroma_subsampling_recovered(gt, mode):
    img = fit.jpeg_pil(ops.resize(gt, 256, "area"), 40, mode)
    assert fit.estimate_subsampling(img, 40, (0, 0))["value"] == mode


# (r, sigma, noise, quality) per case; quality is the preset's own q (official-fit encodes 100 - q)
CASES = [(20.0, 2.0, 8.0, 30), (12.0, 1.0, 0.0, 10)]


@pytest.mark.parametrize("preset_name", ["official", "official-fit", "eq10-literal", "theta"])
def test_preset_parameters_recovered(gt, preset_name):
    for r, sigma, noise, quality in CASES:
        fixed = {"r": r, "sigma": sigma, "noise": noise, "jpeg_quality": quality}
        fixed = {"r": r} if preset_name == "theta" else fixed
        preset, params, lq = _degrade(gt, preset_name, **fixed)  # theta keeps its own sigma, noise and q
        sigma, noise, quality = params["sigma"], params["noise"], params["jpeg_quality"]
        found = fit.fit_pair(gt, lq)
        case = f"{preset_name} r={r} sigma={sigma} noise={noise} q={quality}: {json.dumps(found)[:1500]}"
        size = ops.downsampled_size(gt.shape[0], r)
        assert found["lowres"]["size"] == size, case
        up = fit.PRESET_KERNEL[preset.upsample_interpolation]
        assert up in [found["lowres"]["kernel"], *found["lowres"]["kernel_equivalent"]], case
        if preset.order == "official":
            assert found["order"]["value"] == "official", case
            assert found["jpeg"]["quality"] == preset.ijg_quality(params), case
            lo, hi = found["noise"].get("std_range", [0.0, 0.0])
            assert lo - 1.5 <= noise <= hi + 1.5, case
            down = fit.PRESET_KERNEL[preset.downsample_interpolation]
            assert down in [found["down"]["kernel"], *found["down"]["kernel_equivalent"]], case
            if found["down"]["sigma"] is not None:
                assert found["down"]["sigma_range"][0] - 0.5 <= sigma <= found["down"]["sigma_range"][1] + 0.5, case
        elif noise or quality < 40:  # eq10-literal: noise and JPEG sit in the low-res image, none at 256
            assert found["jpeg"]["at_lq_grid"]["quality"] is None, case
            assert found["noise"]["std"] <= 1.0 and found["order"]["value"] != "official", case
        agreement = fit.preset_agreement(found, preset)
        assert agreement["checks"]["r"] and agreement["agreement"] >= 0.6, (agreement, case)


def test_fit_cli_writes_strict_json(tmp_path, gt, capsys):
    for i, (r, sigma, noise, quality) in enumerate(CASES[:1]):
        _, _, lq = _degrade(gt, "official-fit", r=r, sigma=sigma, noise=noise, jpeg_quality=quality)
        write_png(tmp_path / "gt" / f"{i:03d}.png", gt)
        write_png(tmp_path / "lq" / f"{i:03d}.png", lq)
    out = tmp_path / "fit.json"
    assert main(["testset", "fit", "--gt", str(tmp_path / "gt"), "--lq", str(tmp_path / "lq"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best:" in printed and "input PSNR" in printed

    def reject(value):
        raise AssertionError(f"non-strict JSON constant {value}")

    report = json.loads(out.read_text(), parse_constant=reject)
    assert sorted(report["images"]) == ["000"]
    assert set(report["summary"]["preset_agreement"]) >= {"official", "official-fit", "eq10-literal"}
    assert report["summary"]["best_preset"] == "official-fit"
    assert 10 < report["summary"]["input_psnr"] < 40


def test_fit_cli_rejects_unpaired_folders(tmp_path, gt):
    write_png(tmp_path / "gt" / "a.png", gt)
    write_png(tmp_path / "lq" / "b.png", gt[::2, ::2])
    assert main(["testset", "fit", "--gt", str(tmp_path / "gt"), "--lq", str(tmp_path / "lq")]) == 2


def test_official_fit_preset_is_registered_and_documented():
    preset = PRESETS["official-fit"]
    assert preset.version and preset.order == "official" and preset.jpeg_quality_complement
    assert (preset.downsample_interpolation, preset.upsample_interpolation) == ("bilinear", "bilinear")
    params = preset.sample(np.random.default_rng(0))
    assert params["ijg_quality"] == 100 - params["jpeg_quality"] and 50 <= params["ijg_quality"] <= 95
    from bench.degradations.presets import PRESET_DOCS

    assert set(PRESET_DOCS) == set(PRESETS)


@pytest.mark.slow
def test_official_examples_fit_official_fit_better_than_official():
    """The 10 official MFR inputs against their GT: inside official-fit's ranges, and they agree with
    official-fit's choices (order, r, sigma, noise, JPEG quality, kernels) more often than with official's."""
    examples = shared_path("data", "panini-examples")
    report = fit.fit_folders(examples / "GT", examples / "MFR")
    readings = report["summary"]["preset_agreement"]
    assert readings["official-fit"] > readings["official"], readings
    assert report["summary"]["best_preset"] == "official-fit", readings
    results = report["images"].values()
    inside = [fit.preset_agreement(r, PRESETS["official-fit"])["checks"] for r in results]
    assert sum(c["r"] for c in inside) >= 8 and sum(c.get("jpeg_quality", True) for c in inside) >= 9, inside
    assert 23.0 < report["summary"]["input_psnr"] < 25.0


def test_report_provenance_says_why_each_preset(tmp_path):
    from fake_run import make_run

    from bench.degradations.presets import PRESET_DOCS
    from bench.reports.html import render_report

    html = render_report(make_run(tmp_path)).read_text(encoding="utf-8")
    assert "preset official (<em>" + PRESET_DOCS["official"].split(",")[0] in html


def test_table1_presets_experiment_has_one_testset_per_mfr_preset(monkeypatch, tmp_path):
    from bench.expected import load_expected
    from bench.experiment import EXPECTED_DIR, load_experiment

    monkeypatch.setenv("CELEBA_HQ", str(tmp_path))
    exp = load_experiment("table1_presets")
    testsets = exp.config["testsets"]
    assert sorted(t["preset"] for t in testsets) == ["eq10-literal", "official", "official-fit"]
    assert len({(t["source"], t["seed"], t["count"]) for t in testsets}) == 1  # same faces, same seed
    expected = {(e.method, e.metric, e.testset): e.value for e in load_expected(EXPECTED_DIR / "paper.toml")}
    for t in testsets:
        assert expected[("Panini-Net", "psnr", t["name"])] == 18.01
