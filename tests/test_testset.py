"""The test-set builder: reproducible, parallel-safe, resumable, and strict about bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.cli import main as bench_main
from bench.datasets import testset
from bench.datasets.synthetic import synthetic_face
from bench.errors import BenchError
from conftest import write_faces


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    """Six 1024x1024 RGB PNG faces, as a CelebA-HQ-like source folder."""
    return write_faces(tmp_path_factory.mktemp("faces"), 6)


def test_build_layout_manifest_and_verify(faces_dir, tmp_path):
    info = testset.build("mfr", faces_dir, tmp_path / "ts", count=4, seed=3)
    assert info["n_images"] == 4 and info["preset"] == "official" and info["preset_version"] == "1"
    meta, rows = testset.read_testset(tmp_path / "ts")
    assert meta["testset_id"] == info["testset_id"] and len(rows) == 4
    row = rows[0]
    assert {"id", "source", "source_sha256", "gt_sha256", "lq_sha256", "params", "preset", "preset_version"} <= set(row)
    assert {"sigma", "r", "noise", "jpeg_quality", "noise_seed", "kernel_size"} <= set(row["params"])
    gt = Image.open(tmp_path / "ts" / "gt" / f"{row['id']}.png")
    lq = Image.open(tmp_path / "ts" / "lq" / f"{row['id']}.png")
    assert (gt.size, gt.mode, lq.size, lq.mode) == ((1024, 1024), "RGB", (512, 512), "RGB")
    assert testset.verify(tmp_path / "ts") == []
    # verify catches a changed file and a stray one
    (tmp_path / "ts" / "lq" / f"{row['id']}.png").write_bytes(b"changed")
    (tmp_path / "ts" / "gt" / "stray.png").write_bytes(b"x")
    problems = testset.verify(tmp_path / "ts")
    assert any("hash mismatch" in p for p in problems) and any("stray.png" in p for p in problems)
    assert bench_main(["testset", "verify", str(tmp_path / "ts")]) == 1


def test_same_arguments_give_byte_identical_sets_and_workers_do_not_matter(faces_dir, tmp_path):
    a = testset.build("mfr", faces_dir, tmp_path / "a", count=5, seed=11, workers=1)
    b = testset.build("mfr", faces_dir, tmp_path / "b", count=5, seed=11, workers=2)
    assert a["testset_id"] == b["testset_id"]
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    c = testset.build("mfr", faces_dir, tmp_path / "c", count=5, seed=12)
    assert c["testset_id"] != a["testset_id"]


def test_smaller_count_is_a_subset_with_identical_lq(faces_dir, tmp_path):
    testset.build("mfr", faces_dir, tmp_path / "big", count=6, seed=5)
    testset.build("mfr", faces_dir, tmp_path / "small", count=3, seed=5)
    for lq in (tmp_path / "small" / "lq").iterdir():
        assert lq.read_bytes() == (tmp_path / "big" / "lq" / lq.name).read_bytes()


def test_sr16_and_theta_tasks(tmp_path):
    sr = testset.build("sr16", "synthetic", tmp_path / "sr", count=2)
    assert Image.open(next((tmp_path / "sr" / "lq").iterdir())).size == (64, 64) and sr["preset"] == "sr16"
    theta = testset.build("theta", "synthetic:3", tmp_path / "theta", count=1, params={"r_values": ["16", "128"]})
    _, rows = testset.read_testset(tmp_path / "theta")
    assert theta["n_images"] == 2 and [r["params"]["r"] for r in rows] == [16.0, 128.0]
    assert rows[0]["id"].endswith("_r016") and rows[0]["gt_sha256"] == rows[1]["gt_sha256"]


def test_existing_output_is_reused_refused_or_overwritten(faces_dir, tmp_path):
    out = tmp_path / "ts"
    first = testset.build("mfr", faces_dir, out, count=2)
    mtime = (out / "testset.json").stat().st_mtime_ns
    assert testset.build("mfr", faces_dir, out, count=2) == first  # finished set: reused, nothing rewritten
    assert (out / "testset.json").stat().st_mtime_ns == mtime
    with pytest.raises(BenchError, match="other settings.*seed"):
        testset.build("mfr", faces_dir, out, count=2, seed=9)
    rebuilt = testset.build("mfr", faces_dir, out, count=2, seed=9, overwrite=True)
    assert rebuilt["seed"] == 9
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BenchError, match="not a test set"):
        testset.build("mfr", faces_dir, foreign, count=1)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "deblur"}, "unknown task"),
        ({"preset": "nope"}, "unknown preset"),
        ({"preset": "sr16"}, "is for task 'sr16'"),
        ({"params": {"sigma": ["3", "1"]}}, "sigma must be a range"),
        ({"params": {"blur": "1"}}, "no parameter"),
        ({"count": 7}, "more images than the source has"),
        ({"count": 0}, "at least 1"),
        ({"workers": 0}, "at least 1"),
    ],
)
def test_bad_arguments_fail_before_writing_anything(faces_dir, tmp_path, kwargs, message):
    args = {"task": "mfr", "count": 2, **kwargs}
    with pytest.raises(BenchError, match=message):
        testset.build(args.pop("task"), faces_dir, tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_empty_or_missing_source_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="has no images"):
        testset.build("mfr", tmp_path / "empty", tmp_path / "out", count=1)
    with pytest.raises(BenchError, match="does not exist"):
        testset.build("mfr", tmp_path / "missing", tmp_path / "out", count=1)
    assert not (tmp_path / "out").exists()


def test_image_modes_are_converted_and_recorded(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rgb = synthetic_face(1)
    Image.fromarray(rgb).convert("L").save(src / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(src / "rgba.png")
    Image.fromarray(rgb).convert("P").save(src / "palette.png")
    cv2.imwrite(str(src / "deep.png"), rgb[..., ::-1].astype(np.uint16) * 257)  # 16-bit RGB
    Image.fromarray(rgb).save(src / "plain.jpg", quality=90)
    testset.build("sr16", src, tmp_path / "ts", count=5)
    _, rows = testset.read_testset(tmp_path / "ts")
    notes = {r["id"]: r["conversion"] for r in rows}
    assert notes["plain"] is None
    assert notes["grey"] == "L -> RGB" and notes["rgba"] == "RGBA -> RGB" and notes["palette"] == "P -> RGB"
    assert "16-bit" in notes["deep"]
    deep = np.asarray(Image.open(tmp_path / "ts" / "gt" / "deep.png"))
    np.testing.assert_array_equal(deep, rgb)  # high byte of v*257 is v


def test_wrong_size_needs_resize_flag(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(synthetic_face(2, 512)).resize((600, 512)).save(src / "wide.png")
    with pytest.raises(BenchError, match="wide.png is 600x512, not 1024x1024; pass --resize"):
        testset.build("sr16", src, tmp_path / "ts", count=1)
    testset.build("sr16", src, tmp_path / "ts2", count=1, resize=True)
    _, rows = testset.read_testset(tmp_path / "ts2")
    assert "centre crop 512x512 -> bicubic resize to 1024x1024" in rows[0]["conversion"]


def test_unreadable_and_truncated_images(faces_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("00000.png", "00001.png"):
        (src / name).write_bytes((faces_dir / name).read_bytes())
    Image.fromarray(synthetic_face(3)).save(src / "00002.jpg", quality=90)
    data = (src / "00002.jpg").read_bytes()
    (src / "00002.jpg").write_bytes(data[: len(data) // 2])  # truncated JPEG
    (src / "00003.png").write_bytes(b"this is not a png")
    with pytest.raises(BenchError, match="00002.jpg: not a readable image"):
        testset.build("sr16", src, tmp_path / "ts", count=4)
    info = testset.build("sr16", src, tmp_path / "ts", count=4, skip_bad=True, overwrite=True)
    assert info["n_images"] == 2
    assert [s["source"] for s in info["skipped"]] == ["00002.jpg", "00003.png"]


def test_cli_build_and_errors(tmp_path, capsys):
    code = bench_main(["testset", "build", "--task", "sr16", "--source", "synthetic", "--count", "2",
                       "--out", str(tmp_path / "ts"), "--param", "lq_size=32"])
    assert code == 0 and "2 images" in capsys.readouterr().out
    assert Image.open(tmp_path / "ts" / "lq" / "synth00000.png").size == (32, 32)
    assert bench_main(["testset", "verify", str(tmp_path / "ts")]) == 0
    code = bench_main(["testset", "build", "--task", "mfr", "--source", str(tmp_path / "nothing"), "--count", "2",
                       "--out", str(tmp_path / "x")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_killed_build_resumes_to_identical_files(tmp_path):
    """Kill -9 a build mid-way, run it again: the result equals an uninterrupted build, byte for byte."""
    args = ["--task", "mfr", "--source", "synthetic", "--count", "24", "--seed", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "bench", "testset", "build", *args, "--out", str(reference)],
                   check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "testset", "build", *args, "--out", str(out)], env=env)
    journal = out / ".build" / "rows.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "testset.json").exists(), "the build finished before it could be killed"
    with open(journal, "a") as f:
        f.write('{"id": "synth000')  # a cut-off journal line, as a kill during a write leaves
    (out / "lq" / ".synth00023.png.tmp-1").write_bytes(b"partial")  # and a temporary file
    info = testset.build("mfr", "synthetic", out, count=24, seed=4)
    assert tree_bytes(out) == tree_bytes(reference)
    assert info["testset_id"] == json.loads((reference / "testset.json").read_text())["testset_id"]


def test_parallel_build_after_torch_work_is_safe(tmp_path):
    """A runner that already used torch threads builds with workers: no fork deadlock, same result."""
    code = (
        "import torch; torch.set_num_threads(2); torch.randn(256, 256) @ torch.randn(256, 256);"
        "from bench.datasets import testset;"
        f"print(testset.build('sr16', 'synthetic', {str(tmp_path / 'a')!r}, count=3, workers=2)['testset_id'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    reference = testset.build("sr16", "synthetic", tmp_path / "b", count=3)
    assert out.stdout.strip() == reference["testset_id"]


def test_images_are_flushed_once_at_the_end_not_per_write(tmp_path, monkeypatch):
    """No fsync inside the per-image work (it serialises workers on the disk); every image is fsynced before
    the manifest, so a finished set is durable."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real_fsync(fd)))
    preset = testset.get_preset("official")
    item = testset.resolve_source("synthetic", 1)[0]
    (tmp_path / "one").mkdir()
    testset._process(testset._Job(item, "mfr", preset, 0, str(tmp_path / "one"), False, False))
    assert synced == []
    testset.build("mfr", "synthetic", tmp_path / "set", count=2)
    images = [p for kind in ("gt", "lq") for p in (tmp_path / "set" / kind).iterdir()]
    assert len(images) == 4 and {p.stat().st_ino for p in images} <= set(synced)

