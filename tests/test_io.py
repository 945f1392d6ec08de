"""bench.io: one decoder behind every image reader (each mode, each entry point), strict JSON lines."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from bench import io
from bench.datasets import testset
from bench.errors import BenchError
from bench.methods.train.data import CorruptImage, ImageSource
from bench.metrics.evaluate import evaluate_folders


def _pattern(size: int) -> np.ndarray:
    """uint8 RGB with every channel spanning 0..255 (so 16-bit 65535 and 0 are both exercised)."""
    ramp = np.linspace(0, 255, size * size).round().astype(np.uint8).reshape(size, size)
    return np.stack([ramp, ramp.T, 255 - ramp], axis=2)


def _write_mode(path, mode: str, size: int) -> np.ndarray:
    """Save a `mode` image of side `size` at `path`; return the 8-bit RGB every reader must give."""
    rgb = _pattern(size)
    grey = rgb[..., 0]
    if mode == "RGB":
        Image.fromarray(rgb).save(path)
        return rgb
    if mode == "L":
        Image.fromarray(grey).save(path)
    elif mode == "LA":
        Image.fromarray(np.stack([grey, 255 - grey], 2), "LA").save(path)
    elif mode == "I;16":
        Image.fromarray(grey.astype(np.uint16) * 257).save(path)  # 257 * v: 16-bit white is 65535
        assert Image.open(path).mode.startswith("I")
    elif mode == "RGB;16":
        cv2.imwrite(str(path), rgb[..., ::-1].astype(np.uint16) * 257)
    elif mode == "RGBA":
        Image.fromarray(np.concatenate([rgb, grey[..., None] // 2], 2), "RGBA").save(path)
        return rgb
    elif mode == "P":
        palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
        indices = (np.arange(size * size) % 256).astype(np.uint8).reshape(size, size)
        image = Image.fromarray(indices, "P")
        image.putpalette(palette.flatten().tolist())
        image.save(path)
        return palette[indices]
    return np.repeat(grey[..., None], 3, axis=2) if mode != "RGB;16" else rgb


def _via_read_rgb8(path, size):
    return io.read_rgb8(path)


def _via_runner_batch(path, size):
    return io.read_uint8_batch([path])[0].permute(1, 2, 0).numpy()


def _via_testset(path, size):
    item = testset.SourceItem(0, path.stem, path.name, str(path))
    return testset._load_source(item, resize=False)[0]


def _via_training(path, size):
    return ImageSource(str(path.parent), size).load(0)


ENTRY_POINTS = {"read_rgb8": _via_read_rgb8, "runner": _via_runner_batch, "testset": _via_testset,
                "training": _via_training}
MODES = ("RGB", "L", "LA", "P", "RGBA", "I;16", "RGB;16")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_reader_decodes_every_mode(tmp_path, entry, mode):
    size = testset.GT_SIZE if entry == "testset" else 16
    path = tmp_path / "src" / "face.png"
    path.parent.mkdir()
    expected = _write_mode(path, mode, size)
    image = ENTRY_POINTS[entry](path, size)
    assert image.dtype == np.uint8 and image.shape == (size, size, 3)
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("mode", MODES)
def test_evaluate_reads_every_mode(tmp_path, mode):
    """A prediction saved in any mode scores as the 8-bit RGB it holds (infinite PSNR against it)."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    pred.mkdir()
    expected = _write_mode(pred / "a.png", mode, 16)
    gt.mkdir()
    Image.fromarray(expected).save(gt / "a.png")
    rows, _ = evaluate_folders(gt, pred, metrics=["psnr"])
    assert io.as_float(rows[0]["value"]) == math.inf


def test_sixteen_bit_grey_is_scaled_not_saturated(tmp_path):
    """The bug this decoder fixes: `convert("RGB")` turns every I;16 value above 255 into white."""
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 257 * 10, 257 * 128, 65535]], dtype=np.uint16)).save(path)
    image, note = io.decode_rgb8(path.read_bytes(), path)
    assert image[0, :, 0].tolist() == [0, 10, 128, 255] and "16-bit" in note


def _bad_files(folder):
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.float32)).save(folder / "float.tif")
    png = folder / "ok.png"
    Image.fromarray(_pattern(16)).save(png)
    (folder / "cut.png").write_bytes(png.read_bytes()[:60])
    (folder / "text.png").write_text("not an image")
    png.unlink()
    return sorted(folder.iterdir())


def test_unreadable_files_are_refused_naming_the_file(tmp_path):
    for path in _bad_files(tmp_path / "bad"):
        with pytest.raises(BenchError, match=path.name) as error:
            io.read_rgb8(path)
        assert "BytesIO" not in str(error.value)
        with pytest.raises(BenchError, match=path.name):
            _via_testset(path, 4)
    with pytest.raises(BenchError, match="missing.png"):
        io.read_rgb8(tmp_path / "missing.png")


def test_training_skips_unreadable_files_with_their_name(tmp_path):
    paths = _bad_files(tmp_path / "bad")
    source = ImageSource(str(tmp_path / "bad"), 4)
    for index, path in enumerate(paths):
        with pytest.raises(CorruptImage, match=path.name):
            source.load(index)


def test_one_uint8_converter_rounds_and_clamps():
    batch = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 2.0]).reshape(1, 1, 1, 7).repeat(2, 3, 1, 1)
    out = io.to_uint8(batch)
    assert out.shape == (2, 1, 7, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 0, 0, 2, 128, 255, 255]  # round half to even, like torch.round
    assert io.to_uint8(batch[0]).shape == (1, 7, 3)


def test_image_files_use_one_extension_set_and_refuse_shared_stems(tmp_path):
    for name in ("a.PNG", "b.jpg", "c.tiff", "d.pgm", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list(io.image_files(tmp_path)) == ["a", "b", "c", "d"]
    (tmp_path / "a.webp").write_bytes(b"")
    with pytest.raises(BenchError, match="share the id 'a'"):
        io.image_files(tmp_path)
    with pytest.raises(BenchError, match="not a folder"):
        io.image_files(tmp_path / "notes.txt")


def test_json_lines_are_strict_canonical_and_damage_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    io.write_jsonl(path, [{"b": math.inf, "a": np.float32(0.5)}, {"n": math.nan}])
    text = path.read_text()
    # no Infinity/NaN tokens (null and the reason, issue 15), sorted keys
    assert text == '{"a":0.5,"b":null,"b_nonfinite":"inf"}\n{"n":null,"n_nonfinite":"nan"}\n'
    rows = io.read_jsonl(path)
    assert io.as_float(rows[0]["b"], rows[0]["b_nonfinite"]) == math.inf and math.isnan(io.as_float(rows[1]["n"]))
    assert io.read_jsonl(tmp_path / "absent.jsonl") == []
    path.write_text(text + '{"cut": ')
    with pytest.raises(BenchError, match=r"rows\.jsonl:3: not valid JSON"):
        io.read_jsonl(path)
    assert len(io.read_jsonl(path, tolerate_partial_last_line=True)) == 2


@pytest.mark.parametrize("make", [
    lambda p: None,  # missing
    lambda p: p.mkdir(),  # a folder where a file is expected
    lambda p: p.write_bytes(b"\xff\xfe not utf-8"),
    lambda p: p.write_text("key = = 1"),
])
def test_user_toml_problems_are_bench_errors_naming_the_file(tmp_path, make):
    from bench.experiment import load_experiment

    path = tmp_path / "exp.toml"
    make(path)
    named = r"experiment file .*exp\.toml (does not exist|cannot be read|is not valid TOML)"
    with pytest.raises(BenchError, match=named):
        load_experiment(path)
    with pytest.raises(BenchError, match=named):  # the shared reader itself (expected-values files have no pre-check)
        io.read_toml(path, "experiment file")
