"""Issue 15 item 2 and 3 (exit statuses): the CLI boundary turns every failure into one line.

OSErrors (read-only folder, full disk, a file where a folder should be) -> exit 2 naming the path
and the cause; a traceback only with --debug or BENCH_DEBUG=1; Ctrl-C -> 130 with a hint that works;
a closed pipe (`| head`) -> 141 and nothing on stderr.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from bench import cli
from bench.cli import main
from conftest import flat_images


def fail_with(monkeypatch, command: str, exc: BaseException) -> None:
    """Make `bench COMMAND` raise `exc` from inside its run()."""
    module = __import__(cli.COMMANDS[command], fromlist=["run"])

    def boom(args):
        raise exc

    monkeypatch.setattr(module, "run", boom)


@pytest.mark.parametrize(("code", "words"), [
    (errno.EACCES, "permission denied"),
    (errno.EROFS, "read-only file system"),
    (errno.ENOSPC, "no space left"),
    (errno.ENOTDIR, "is a file, not a folder"),
    (errno.EEXIST, "already exists"),
])
def test_os_errors_are_one_line_naming_path_and_cause(monkeypatch, capsys, code, words):
    fail_with(monkeypatch, "report", OSError(code, "raw text", "/some/run/report/index.html"))
    monkeypatch.delenv("BENCH_DEBUG", raising=False)
    assert main(["report", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("bench report: error: /some/run/report/index.html: ") and words in err


def test_debug_flag_and_env_show_the_traceback(monkeypatch, capsys):
    fail_with(monkeypatch, "report", OSError(errno.ENOSPC, "No space left on device", "/full/disk"))
    monkeypatch.delenv("BENCH_DEBUG", raising=False)
    assert main(["report", "r", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", "report", "r"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("BENCH_DEBUG", "1")
    assert main(["report", "r"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_is_130_and_the_hint_works_for_that_command(monkeypatch, capsys):
    fail_with(monkeypatch, "run", KeyboardInterrupt())
    assert main(["run", "ci"]) == 130
    assert "--resume" in capsys.readouterr().err
    fail_with(monkeypatch, "testset", KeyboardInterrupt())  # builds resume by themselves
    assert main(["testset", "build", "--task", "mfr", "--source", "synthetic", "--out", "x"]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "same command" in err


def test_unwritable_json_target_is_exit_2_not_a_traceback(tmp_path, capsys):
    gt = flat_images(tmp_path / "gt", [100, 100])
    blocker = tmp_path / "afile"
    blocker.write_text("I am a file")
    code = main(["evaluate", "--gt", str(gt), "--pred", str(gt), "--metrics", "psnr",
                 "--json", str(blocker / "scores.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(blocker) in err


def test_closed_pipe_is_quiet():
    """`bench weights list --json | head -c 1`: the reader is gone before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", "weights", "list", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_evaluate_without_metric_weights_skips_defaults_and_refuses_named_ones(tmp_path, monkeypatch, capsys):
    """Issue 15 item 1: default metrics without weights are skipped (one line each, recorded); named: exit 2."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    monkeypatch.delenv("PANINI_BENCH_WEIGHTS", raising=False)
    folder = flat_images(tmp_path / "gt", [60, 61], size=64)
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--gt", str(folder), "--pred", str(folder), "--json", str(scores)]) == 0
    err = capsys.readouterr().err
    assert "bench weights fetch lpips-alex" in err and "bench weights fetch inception-fid" in err
    data = json.loads(scores.read_text())
    assert {r["metric"] for r in data["results"]} == {"psnr", "ssim"}
    assert {s["metric"] for s in data["skipped"]} == {"lpips", "fid", "kid"}
    assert main(["evaluate", "--gt", str(folder), "--pred", str(folder), "--metrics", "psnr,lpips"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bench weights fetch lpips-alex" in err


def test_console_script_freezes_the_heap_after_main(monkeypatch):
    """`bench` (the console script) is cli.console: main's exit status, then gc.freeze so that the
    interpreter's teardown does not walk torch's objects (main, used in-process by tests, does not)."""
    import gc
    from pathlib import Path

    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["bench"] == "bench.cli:console"
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append(("main", argv)) or 3)
    assert cli.console(["methods"]) == 3
    assert calls == [("main", ["methods"]), "freeze"]
