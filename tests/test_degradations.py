"""Degradation steps and presets: pure, seeded, shaped as promised, and faithful to the official SR inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.degradations import ops
from bench.degradations.presets import PRESETS, get_preset, parse_param
from conftest import shared_path


@pytest.fixture(scope="module")
def face():
    from bench.datasets.synthetic import synthetic_face

    return synthetic_face(0, 256)


def test_blur_kernel_size_and_effect(face):
    assert ops.blur_kernel_size(1.0) == 7 and ops.blur_kernel_size(0.2) == 3
    blurred = ops.gaussian_blur(face, 3.0)
    assert blurred.shape == face.shape and blurred.dtype == np.uint8
    # blur removes high frequencies: neighbouring-pixel differences shrink
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < 0.5 * np.abs(np.diff(face.astype(int), axis=1)).mean()
    np.testing.assert_array_equal(ops.gaussian_blur(face, 0), face)


def test_downsample_sizes_and_area_average():
    img = np.zeros((1024, 1024, 3), np.uint8)
    img[:, ::2] = 200  # stripes: area averaging gives their mean
    small = ops.downsample(img, 64)
    assert small.shape == (16, 16, 3) and np.all(np.abs(small.astype(int) - 100) <= 1)
    assert ops.downsampled_size(1024, 200) == 5 and ops.downsampled_size(1024, 2000) == 1
    with pytest.raises(ValueError, match="unknown interpolation"):
        ops.resize(img, 8, "magic")


def test_noise_is_seeded_zero_mean_and_clipped(face):
    a = ops.add_gaussian_noise(face, 10, seed=1)
    np.testing.assert_array_equal(a, ops.add_gaussian_noise(face, 10, seed=1))
    assert not np.array_equal(a, ops.add_gaussian_noise(face, 10, seed=2))
    flat = np.full((128, 128, 3), 128, np.uint8)
    noisy = ops.add_gaussian_noise(flat, 10, seed=3).astype(float) - 128
    assert abs(noisy.mean()) < 0.3 and 9.5 < noisy.std() < 10.5
    grey = ops.add_gaussian_noise(flat, 10, seed=3, grey=True)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert ops.add_gaussian_noise(np.full((8, 8, 3), 255, np.uint8), 50, seed=0).max() == 255


def test_jpeg_quality_orders_error(face):
    err = {q: np.abs(ops.jpeg(face, q).astype(int) - face).mean() for q in (5, 50, 95)}
    assert err[5] > err[50] > err[95]
    with pytest.raises(ValueError, match="quality"):
        ops.jpeg(face, 0)


def test_steps_reject_non_uint8_rgb():
    with pytest.raises(ValueError, match="uint8 RGB"):
        ops.gaussian_blur(np.zeros((8, 8), np.uint8), 1)
    with pytest.raises(ValueError, match="uint8 RGB"):
        ops.jpeg(np.zeros((8, 8, 3), np.float32), 50)


def test_official_and_literal_orders_differ_only_in_order(face):
    big = np.asarray(Image.fromarray(face).resize((1024, 1024), Image.BICUBIC))
    params = get_preset("official").sample(np.random.default_rng(7))
    official = get_preset("official").apply(big, params)
    literal = get_preset("eq10-literal").apply(big, params)
    assert official.shape == literal.shape == (512, 512, 3)
    assert not np.array_equal(official, literal)


def test_sampling_ranges_and_record():
    preset = get_preset("official")
    draws = [preset.sample(np.random.default_rng([0, i])) for i in range(300)]
    sig, r, noise, q = (np.array([d[k] for d in draws]) for k in ("sigma", "r", "noise", "jpeg_quality"))
    assert 0.2 <= sig.min() and sig.max() <= 10 and 10 <= r.min() and r.max() <= 200
    assert 0 <= noise.min() and noise.max() <= 25 and q.min() >= 5 and q.max() <= 50
    assert len(np.unique(q)) > 30  # integers across the whole range
    assert all(d["kernel_size"] == ops.blur_kernel_size(d["sigma"]) for d in draws)


def test_theta_preset_fixes_everything_but_r():
    preset = get_preset("theta", sigma="2", noise="5", jpeg_quality="40", r_values=["16", "64"])
    rows = [preset.sample(np.random.default_rng(i), fixed) for i, fixed in enumerate(preset.variants())]
    assert [r["r"] for r in rows] == [16.0, 64.0]
    assert {(r["sigma"], r["noise"], r["jpeg_quality"]) for r in rows} == {(2.0, 5.0, 40)}


def test_preset_parameter_errors():
    for name, params, match in [
        ("nope", {}, "unknown preset"),
        ("official", {"blur": 3}, "no parameter"),
        ("official", {"sigma": (5, 1)}, "sigma must be a range"),
        ("official", {"jpeg_quality": (0, 50)}, "jpeg_quality"),
        ("official", {"sigma": "abc"}, "bad value"),
    ]:
        with pytest.raises(ValueError, match=match):
            get_preset(name, **params)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_param("sigma")
    assert parse_param("sigma=0.5,4") == ("sigma", ["0.5", "4"])


def test_sr16_reproduces_the_official_inputs():
    """The 16x SR inputs of the official examples are PIL bilinear 1024 -> 64 of the GT (within 1 level)."""
    gt_dir, sr_dir = shared_path("data", "panini-examples", "GT"), shared_path("data", "panini-examples", "SR")
    preset = get_preset("sr16")
    for gt_path in sorted(gt_dir.glob("*.jpg")):
        gt = np.asarray(Image.open(gt_path).convert("RGB"))
        ours = preset.apply(gt, {}).astype(int)
        official = np.asarray(Image.open(sr_dir / f"{gt_path.stem}.png").convert("RGB")).astype(int)
        assert np.abs(ours - official).max() <= 1, gt_path.name


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.0, 10.0),
    r=st.floats(1.0, 300.0),
    noise=st.floats(0.0, 40.0),
    quality=st.integers(1, 100),
    size=st.sampled_from([64, 96, 128]),
    order=st.sampled_from(["official", "eq10-literal"]),
)
def test_any_valid_parameters_give_uint8_rgb_at_lq_size(sigma, r, noise, quality, size, order):
    img = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    preset = get_preset(order, lq_size=size // 2)
    params = {"sigma": sigma, "r": r, "noise": noise, "jpeg_quality": quality, "noise_seed": 1}
    out = preset.apply(img, params)
    assert out.shape == (size // 2, size // 2, 3) and out.dtype == np.uint8


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), indices=st.lists(st.integers(0, 10**6), min_size=2, max_size=6, unique=True))
def test_per_image_parameters_do_not_depend_on_order(seed, indices):
    preset = PRESETS["official"]
    forward = {i: preset.sample(np.random.default_rng([seed, i])) for i in indices}
    backward = {i: preset.sample(np.random.default_rng([seed, i])) for i in reversed(indices)}
    assert forward == backward
    assert len({str(v) for v in forward.values()}) == len(indices)
