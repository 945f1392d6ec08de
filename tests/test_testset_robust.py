"""Issue 15 items 2 and 5 for test sets: one writer per folder, --count all / the default on a small
folder, `verify` covering testset.json, a truncated manifest as a clear error, --skip-bad on a clean set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.datasets import testset
from bench.errors import BenchError
from bench.locks import folder_lock
from conftest import write_faces


@pytest.fixture(scope="module")
def three_faces(tmp_path_factory):
    return write_faces(tmp_path_factory.mktemp("faces"), 3)


@pytest.fixture(scope="module")
def built(three_faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("sets") / "sr"
    return out, testset.build("sr16", three_faces, out)


def test_default_count_takes_all_images_of_a_small_folder_and_records_it(built):
    out, info = built
    assert info["n_images"] == 3 and info["count"] == 3
    assert "default 1000" in info["count_rule"] and "3" in info["count_rule"]
    assert testset.verify(out) == []


def test_count_all_and_bad_counts(three_faces, tmp_path, capsys):
    assert main(["testset", "build", "--task", "sr16", "--source", str(three_faces), "--out", str(tmp_path / "a"),
                 "--count", "all"]) == 0
    info = json.loads((tmp_path / "a" / "testset.json").read_text())
    assert info["n_images"] == 3 and info["count_rule"].startswith("all")
    with pytest.raises(BenchError, match="more images than the source has"):
        testset.build("sr16", three_faces, tmp_path / "b", count=4)
    assert not (tmp_path / "b").exists()  # refused before writing: no folder left behind
    with pytest.raises(SystemExit):
        main(["testset", "build", "--task", "sr16", "--source", "x", "--out", "y", "--count", "many"])
    assert "expected a number or 'all'" in capsys.readouterr().err


def test_verify_covers_testset_json(built, tmp_path):
    out, _ = built
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    assert testset.verify(copy) == []
    info = json.loads((copy / "testset.json").read_text())
    info["seed"] = 5
    (copy / "testset.json").write_text(json.dumps(info))
    problems = testset.verify(copy)
    assert any("info_sha256" in p for p in problems)
    assert main(["testset", "verify", str(copy)]) == 1


def test_truncated_manifest_is_a_clear_error(built, tmp_path, capsys):
    out, _ = built
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "testset.json").write_bytes((out / "testset.json").read_bytes())
    manifest = (out / "manifest.jsonl").read_bytes()
    (cut / "manifest.jsonl").write_bytes(manifest[: len(manifest) - 40])
    with pytest.raises(BenchError, match="manifest.jsonl"):
        testset.read_testset(cut)
    assert main(["testset", "verify", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "manifest.jsonl" in err


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(three_faces, tmp_path):
    out = tmp_path / "busy"
    with folder_lock(out, "test set"):
        with pytest.raises(BenchError, match="being written by another process"):
            testset.build("sr16", three_faces, out, count=1)
    assert testset.build("sr16", three_faces, out, count=1)["n_images"] == 1  # free again afterwards
    assert sorted(p.name for p in out.iterdir()) == ["gt", "lq", "manifest.jsonl", "testset.json"]


def test_skip_bad_reuses_a_set_that_skipped_nothing(built, three_faces):
    out, info = built
    assert testset.build("sr16", three_faces, out, skip_bad=True)["testset_id"] == info["testset_id"]
