"""`bench run`: the ci experiment end to end, failures isolated, kill and resume, torchrun sharding."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.experiment import load_experiment
from bench.io import read_json, read_jsonl
from bench.runner import Runner
from conftest import REPO

TESTS = Path(__file__).resolve().parent
QUICK = """
[experiment]
name = "quick"
table = "quick"
metrics = ["psnr"]
batch_size = 1
bootstrap = 50

[[testsets]]
name = "mfr"
task = "mfr"
count = {count}
"""


def _experiment(tmp_path: Path, methods: str, count: int = 2) -> Path:
    path = tmp_path / "quick.toml"
    path.write_text(QUICK.format(count=count) + methods)
    return path


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """The built-in `ci` experiment, run once through the CLI (one torch thread, as in CI), with its report."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("ci") / "run"
        assert main(["run", "ci", "--out", str(out), "--report"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_ci_experiment_end_to_end(ci_run):
    info = read_json(ci_run / "run.json")
    assert info["status"] == "complete" and not info["failures"]
    assert info["provenance"]["git"]["commit"] and info["provenance"]["packages"]["torch"]
    assert info["provenance"]["device"]["requested"] == "cpu"
    assert info["config"] == load_experiment("ci").config and info["seeds"]["testsets"]["synthetic-mfr"] == 0
    results = read_jsonl(ci_run / "results.jsonl")
    got = {(r["method"], r["testset"], r["metric"]) for r in results if r["metric"] in ("psnr", "ssim")}
    assert got == {(m, t, k) for m, t in (("Bicubic", "synthetic-mfr"), ("Bicubic", "synthetic-sr16"),
                                          ("Panini-Net (tiny, random)", "synthetic-mfr"),
                                          ("Panini-Net SR (tiny, random)", "synthetic-sr16"))
                   for k in ("psnr", "ssim")}
    for row in results:
        assert row["testset_id"] == info["testsets"][row["testset"]]["id"]
        if row["metric"] == "psnr":
            assert row["n"] == 2 and row["ci_low"] <= row["value"] <= row["ci_high"] and row["protocol_id"]
    bicubic = next(r["value"] for r in results if r["method"] == "Bicubic" and r["metric"] == "psnr"
                   and r["testset"] == "synthetic-sr16")
    tiny = next(r["value"] for r in results if r["method"] == "Panini-Net SR (tiny, random)" and r["metric"] == "psnr")
    assert bicubic > tiny + 5  # an untrained network is far from bicubic: the numbers are real
    thetas = [r for r in results if r["metric"] == "theta"]
    assert [r["condition"] for r in thetas] == ["r=16", "r=32", "r=64", "r=128"]
    assert all(0 < r["value"] < 1 and r["n"] == 1 for r in thetas)
    per_image = read_jsonl(ci_run / "per_image.jsonl")
    assert sum(1 for r in per_image if r["metric"] == "psnr") == 8
    ts_id = info["testsets"]["synthetic-mfr"]["id"]
    outputs = sorted((ci_run / "outputs" / "Bicubic" / ts_id).glob("*.png"))
    assert len(outputs) == 2
    from PIL import Image

    assert Image.open(outputs[0]).size == (1024, 1024)
    dissection = read_jsonl(ci_run / "analysis.jsonl")
    assert len(dissection) == 4 and all((ci_run / f).exists() for d in dissection for f in d["files"].values())
    assert (ci_run / "report" / "index.html").exists() and (ci_run / "report" / "tables.tex").exists()


def test_a_raising_method_is_recorded_and_the_others_still_run(tmp_path, test_methods):
    path = _experiment(tmp_path, '[[methods]]\nname = "Raises"\nmethod = "test-raising"\n'
                                 '[[methods]]\nname = "Bicubic"\nmethod = "bicubic"\n'
                                 '[[methods]]\nname = "Unknown"\nmethod = "no-such-method"\n')
    out = tmp_path / "run"
    Runner(load_experiment(path), out).run()
    info = read_json(out / "run.json")
    assert info["status"] == "complete-with-failures"
    failures = {f["method"]: f for f in info["failures"]}
    assert failures["Raises"]["stage"] == "restore" and "always fails" in failures["Raises"]["error"]
    assert "Traceback" in failures["Raises"]["traceback"]
    assert failures["Unknown"]["stage"] == "creation"
    assert "unknown method 'no-such-method'" in failures["Unknown"]["error"]
    assert {r["method"] for r in read_jsonl(out / "results.jsonl")} == {"Bicubic"}
    from bench.reports.html import render_report

    html = render_report(out).read_text(encoding="utf-8")
    assert "this test method always fails" in html and "Unknown" in html
    with pytest.raises(BenchError, match="already holds a run"):
        Runner(load_experiment(path), out).run()
    with pytest.raises(BenchError, match="different experiment config"):
        Runner(load_experiment(path, ["experiment.bootstrap=10"]), out, resume=True).run()


def _cli(args: list[str]) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import helper_methods; helper_methods.register(); "
            f"from bench.cli import main; sys.exit(main({args!r}))")
    return [sys.executable, "-c", code]


def test_resume_after_kill_redoes_nothing_and_gives_the_same_results(tmp_path, test_methods):
    path = _experiment(tmp_path, '[[methods]]\nname = "Slow"\nmethod = "test-slow-bicubic"\n'
                                 'options = { delay = 0.4 }\n', count=4)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli(["run", str(path), "--out", str(out)]), env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    outputs = out / "outputs" / "Slow"
    while time.time() < deadline and len(list(outputs.glob("*/*.png"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in outputs.glob("*/*.png")}
    assert 2 <= len(done) < 4, proc.stderr.read().decode()[-2000:]
    assert read_json(out / "run.json")["status"] == "running"
    resumed = subprocess.run(_cli(["run", str(path), "--out", str(out), "--resume"]), env=env, cwd=tmp_path,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished images were not redone
    assert len(list(outputs.glob("*/*.png"))) == 4
    # an uninterrupted run of the same method gives the same numbers
    fresh = tmp_path / "fresh"
    Runner(load_experiment(path, ["methods.Slow.options={ delay = 0.0 }"]), fresh,
           testset_root=out / "testsets").run()

    def values(run):
        return {(r["metric"], r["value"], r["ci_low"], r["ci_high"]) for r in read_jsonl(run / "results.jsonl")}

    assert values(out) == values(fresh)
    assert read_json(out / "run.json")["status"] == "complete"
    # a second resume reuses everything: the slow method is never called again
    before = {p: p.stat().st_mtime_ns for p in [*outputs.glob("*/*.png"), *(out / "scores").rglob("*.json")]}
    Runner(load_experiment(path), out, resume=True).run()
    assert {p: p.stat().st_mtime_ns for p in before} == before and values(out) == values(fresh)


@pytest.mark.slow
def test_torchrun_shards_and_merges_to_the_single_process_result(tmp_path):
    path = _experiment(tmp_path, '[[methods]]\nname = "Bicubic"\nmethod = "bicubic"\n', count=3)
    single = tmp_path / "single"
    assert main(["run", str(path), "--out", str(single)]) == 0
    sharded = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run([*torchrun, "-m", "bench", "run", str(path),
                             "--out", str(sharded), "--testsets", str(single / "testsets")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(sharded / "run.json")["world_size"] == 2

    def rows(run, name):
        return [{k: v for k, v in r.items() if k != "weights_hash"} for r in read_jsonl(run / name)]

    assert rows(sharded, "results.jsonl") == rows(single, "results.jsonl")
    assert rows(sharded, "per_image.jsonl") == rows(single, "per_image.jsonl")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
                  "--virtual-time-budget=5000"]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`bench demo` with 2 faces per test set (the default is 8), one torch thread; returns (folder, stdout)."""
    import contextlib
    import io

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out, printed = tmp_path_factory.mktemp("demo") / "demo", io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            assert main(["demo", "--out", str(out), "--count", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out, printed.getvalue()


def test_demo_ends_with_the_report_and_explains_missing_weights(demo_run):
    out, printed = demo_run
    report = out / "report" / "index.html"
    assert printed.strip().splitlines()[-1] == f"report: {report.resolve()}"
    info = read_json(out / "run.json")
    assert not info["failures"], info["failures"]
    statuses = {name: m["status"] for name, m in info["methods"].items()}
    assert statuses["Bicubic"] == statuses["Panini-Net (tiny, random)"] == "ok"
    for spec in info["config"]["methods"]:  # baselines: scored when their weights are here, else explained
        if spec["optional"]:
            assert statuses[spec["name"]] in ("ok", "skipped")
    html = report.read_text(encoding="utf-8")
    missing = [n for n in info["notes"] if n["kind"] == "weights-missing"]
    from markupsafe import escape

    assert all(str(escape(n["message"])) in html for n in missing) and "bench weights fetch" in html
    metrics = {r["metric"] for r in read_jsonl(out / "results.jsonl")}
    assert {"psnr", "ssim"} <= metrics
    for name in ("lpips", "fid"):  # scored where weights exist, otherwise a 'weights not found' column
        assert name in metrics or any(n.get("metric") == name for n in missing)


@pytest.mark.browser
def test_report_in_headless_chromium(demo_run, tmp_path):
    """The demo's report opened from a local file: tables, decoded images, no console messages, a
    screenshot that is not blank."""
    out, _ = demo_run
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    if chromium is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    url = (out / "report" / "index.html").resolve().as_uri()

    def chrome(*args):
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=120)

    dom = chrome("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('<table class="paper">') >= 3 and "Panini-Net (tiny, random)" in html
    assert "verdict-supported" in html and 'alt="metrics by sigma, synthetic-mfr"' in html  # demo claims, plots
    assert 'id="browser-table"' in html and "Bicubic better than Panini-Net (tiny, random) on psnr" in html
    images = int(re.search(r'data-images="(\d+)"', html).group(1))
    assert images >= 20 and 'data-broken-images="0"' in html  # every embedded image decoded
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    shot = tmp_path / "report.png"
    result = chrome(f"--screenshot={shot}", "--window-size=1280,2400")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.02  # text, tables and faces, not a blank page


def test_ci_run_matches_its_recorded_expected_values(ci_run, capsys):
    """The CI regression check: bench/configs/expected/ci.toml was written by `bench compare --write-expected`
    from a ci run; re-record it (same command) when a change of the synthetic faces or degradations is meant."""
    assert main(["compare", str(ci_run)]) == 0, capsys.readouterr().out
    assert "13 values checked" in capsys.readouterr().out


def test_an_unusable_metric_stops_the_run_before_any_work(tmp_path):
    path = _experiment(tmp_path, '[[methods]]\nname = "Bicubic"\nmethod = "bicubic"\n')
    out = tmp_path / "run"
    with pytest.raises(BenchError, match="unknown metric 'sharpness'"):
        Runner(load_experiment(path, ['experiment.metrics=["psnr", "sharpness"]']), out).run()
    info = read_json(out / "run.json")
    assert info["status"] == "failed" and "sharpness" in info["error"]
    assert not (out / "testsets").exists()


def test_theta_summary_groups_by_condition_with_the_one_bootstrap():
    from bench.analyses import Target, theta_summary
    from bench.metrics.bootstrap import bootstrap_mean_ci

    rows = [{"condition": f"r={r}", "value": v} for r, v in [(32, 0.4), (16, 0.1), (32, 0.6), (16, 0.3), (16, 0.2)]]
    summary = theta_summary(rows, resamples=300, seed=3)
    assert [r["condition"] for r in summary] == ["r=16", "r=32"]  # numeric order, not text order
    r16 = summary[0]
    assert r16["n"] == 3 and abs(r16["value"] - 0.2) < 1e-12 and abs(r16["spread"] - 0.1) < 1e-12
    assert (r16["ci_low"], r16["ci_high"], r16["ci_level"]) == bootstrap_mean_ci([0.1, 0.3, 0.2], 300, seed=[3, 7])
    assert r16["ci_low"] < r16["value"] < r16["ci_high"]
    many = [{"condition": "", "value": v / 10} for v in range(10)]
    assert theta_summary(many, 300, seed=4)[0]["ci_low"] != theta_summary(many, 300, seed=3)[0]["ci_low"]
    target = Target(method=None, label="m", testset=type("TS", (), {"name": "ts"})(), group_by="r", load_lq=None)
    assert target.condition({"id": "a", "params": {"r": 16.0}}) == "r=16"
    with pytest.raises(BenchError, match="group_by = 'r' but manifest row b has no such parameter"):
        target.condition({"id": "b", "params": {"sigma": 1.0}})
