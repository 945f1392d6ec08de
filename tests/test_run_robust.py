"""Issue 15 items 1-4 for `bench run`: exit statuses, failed and interrupted runs, --overwrite, a run
that failed before any output, stale temporary files, one writer per run folder, missing metric
weights, and relative paths (command line: from the current folder; experiment file: from the file)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.io import read_json, read_jsonl
from bench.locks import folder_lock

EXPERIMENT = """
[experiment]
name = "robust"
metrics = ["psnr"]
batch_size = 1
bootstrap = 10

[[testsets]]
name = "s"
task = "sr16"
count = 1

[[methods]]
name = "Bicubic"
method = "bicubic"
"""
BROKEN = """
[[methods]]
name = "Broken"
method = "command"
options = { template = "false {input_dir} {output_dir}" }
"""


@pytest.fixture
def env(tmp_path, tmp_path_factory, monkeypatch):
    """A working folder, test sets shared by every test here, no metric weights."""
    shared = tmp_path_factory.getbasetemp() / "robust-testsets"
    monkeypatch.setenv("PANINI_BENCH_TESTSETS", str(shared))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def experiment(folder: Path, extra: str = "", name: str = "exp.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(EXPERIMENT + extra)
    return path


def run_info(path: Path, *extra: str, expect: int) -> dict:
    """`bench run PATH --out run EXTRA...` in the working folder must exit with `expect`; its run.json."""
    assert main(["run", str(path), "--out", "run", *extra]) == expect
    return read_json(Path("run") / "run.json")


def test_a_failed_method_gives_exit_1_and_results_for_the_rest(env, capsys):
    path = experiment(env, BROKEN)
    info = run_info(path, expect=1)
    assert info["status"] == "complete-with-failures"
    assert {f["method"] for f in info["failures"]} == {"Broken"}
    assert {r["method"] for r in read_jsonl(env / "run" / "results.jsonl")} == {"Bicubic"}
    assert "Broken" in capsys.readouterr().out


def test_overwrite_replaces_a_run_and_never_deletes_anything_else(env, capsys):
    path = experiment(env, BROKEN)
    assert main(["run", str(path), "--out", "run"]) == 1
    assert main(["run", str(path), "--out", "run"]) == 2  # refused: it holds a run
    assert "--overwrite" in capsys.readouterr().err
    fixed = experiment(env / "fixed")
    info = run_info(fixed, "--overwrite", expect=0)
    assert info["status"] == "complete" and "Broken" not in info["methods"]
    assert not (env / "run" / "outputs" / "Broken").exists()
    mine = env / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert main(["run", str(fixed), "--out", "mine", "--overwrite"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "precious"
    assert main(["run", str(fixed), "--out", "run", "--overwrite", "--resume"]) == 2


def test_a_run_that_failed_before_any_output_restarts_with_changed_settings(env, capsys):
    path = experiment(env)
    info = run_info(path, "--set", "testsets.s.source=no-such-folder", expect=2)
    assert info["status"] == "failed" and "no-such-folder" in info["error"]
    assert run_info(path, expect=0)["status"] == "complete"  # changed settings, no --resume or --overwrite needed


def test_interrupted_and_failed_runs_say_so_in_run_json(env, monkeypatch, capsys):
    from bench.methods import generic

    path = experiment(env)

    def interrupt(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(generic.Resize, "forward", interrupt)
    assert main(["run", str(path), "--out", "run"]) == 130
    assert "--resume" in capsys.readouterr().err
    info = read_json(env / "run" / "run.json")
    assert info["status"] == "interrupted" and "--resume" in info["error"]

    def disk_full(self, x):
        raise OSError(errno.ENOSPC, "No space left on device", str(env / "run" / "outputs"))

    monkeypatch.setattr(generic.Resize, "forward", disk_full)
    info = run_info(path, "--resume", expect=1)  # recorded for the method, the run goes on
    assert "No space left" in info["failures"][0]["error"]


def test_resume_removes_stale_temporary_files(env):
    path = experiment(env)
    assert main(["run", str(path), "--out", "run"]) == 0
    stale = [env / "run" / ".run.json.tmp-999999", env / "run" / "outputs" / "Bicubic" / ".x.png.tmp-999999"]
    for file in stale:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"half")
    assert main(["run", str(path), "--out", "run", "--resume"]) == 0
    assert not any(file.exists() for file in stale)


def test_a_second_writer_of_a_run_folder_is_refused(env, capsys):
    path = experiment(env)
    with folder_lock(env / "run", "run folder"):
        assert main(["run", str(path), "--out", "run"]) == 2
    assert "another process" in capsys.readouterr().err


def test_a_named_metric_without_weights_is_a_failed_metric_and_the_rest_is_scored(env, capsys):
    path = experiment(env)
    info = run_info(path, "--set", 'experiment.metrics=["psnr", "lpips"]', expect=1)
    assert any(f.get("metric") == "lpips" and "bench weights fetch lpips-alex" in f["error"] for f in info["failures"])
    assert {r["metric"] for r in read_jsonl(env / "run" / "results.jsonl")} == {"psnr"}


def test_relative_paths_from_the_command_line_and_from_the_file(env, tmp_path_factory):
    faces = env / "faces"
    faces.mkdir()
    face = (np.random.default_rng(0).random((1024, 1024, 3)) * 255).astype(np.uint8)
    Image.fromarray(face).save(faces / "a.png")
    elsewhere = tmp_path_factory.mktemp("experiments")
    path = experiment(elsewhere)
    # relative on the command line: from the current folder, not from the experiment file's folder
    recorded = run_info(path, "--set", "testsets.s.source=faces", expect=0)["testsets"]["s"]["source"]
    assert recorded == str(faces.resolve())
    # relative in the file: from the file's folder
    (elsewhere / "faces").mkdir()
    Image.fromarray(face).save(elsewhere / "faces" / "a.png")
    path.write_text(EXPERIMENT.replace('count = 1', 'count = 1\nsource = "faces"'))
    assert main(["run", str(path), "--out", "run2"]) == 0
    assert read_json(env / "run2" / "run.json")["testsets"]["s"]["source"] == str((elsewhere / "faces").resolve())
    text = (env / "run2" / "run.json").read_text()
    assert "${" not in text
    json.loads(text)


def test_weights_from_the_cache_are_recorded_by_absolute_path(tmp_path, monkeypatch):
    """run.json names the cache files a method loaded when the experiment gave no weights path."""
    from types import SimpleNamespace

    from bench.outputs import registry_files
    from bench.weights import expected_path

    monkeypatch.setenv("PANINI_BENCH_WEIGHTS", str(tmp_path / "cache"))
    method = SimpleNamespace(spec=SimpleNamespace(weights=("gpen-bfr-512",)))
    assert registry_files(method, {}) == ""  # nothing in the cache: nothing was loaded from it
    path = expected_path("gpen-bfr-512")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stand-in")
    assert registry_files(method, {}) == str(path.resolve())
    assert registry_files(method, {"random_init_seed": 0}) == ""  # seeded random weights: no file read


def test_path_options_resolve_like_every_experiment_path(env, tmp_path_factory):
    """The folder method's `path` in a file is taken from the file's folder, and from the current folder
    when given with --set."""
    from bench.experiment import load_experiment
    from bench.outputs import create_for_run

    elsewhere = tmp_path_factory.mktemp("experiments")
    path = experiment(elsewhere, '[[methods]]\nname = "F"\nmethod = "folder"\noptions = { path = "results" }\n')
    for folder in (elsewhere / "results", env / "mine"):
        folder.mkdir()
    exp = load_experiment(path)
    assert create_for_run(exp, exp.spec.methods[-1], "cpu").path == elsewhere / "results"
    exp = load_experiment(path, ["methods.F.options.path=mine"])
    assert create_for_run(exp, exp.spec.methods[-1], "cpu").path == env / "mine"
