"""`bench compare`: passes on the run it was recorded from, fails when a value regresses."""

from __future__ import annotations

import json

import pytest
from fake_run import make_run

from bench.cli import main
from bench.errors import BenchError
from bench.expected import Expected, judge, load_expected


def _perturb(run, method, metric, delta):
    path = run / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["method"] == method and row["metric"] == metric:
            row["value"] += delta
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_write_expected_then_compare_passes_and_a_regression_fails(tmp_path, capsys):
    run = make_run(tmp_path, theta=False, failure=False)
    expected = tmp_path / "expected.toml"
    assert main(["compare", str(run), "--write-expected", str(expected), "--tolerance", "0.05"]) == 0
    values = load_expected(expected)
    assert {(v.method, v.metric) for v in values} == {(m, k) for m in ("Bicubic", "Panini-Net")
                                                      for k in ("psnr", "lpips")}
    assert {v.direction for v in values if v.metric == "psnr"} == {"higher"}
    assert {v.direction for v in values if v.metric == "lpips"} == {"lower"}
    capsys.readouterr()
    assert main(["compare", str(run), "--expected", str(expected)]) == 0
    assert "4 ok" in capsys.readouterr().out

    _perturb(run, "Panini-Net", "psnr", -0.2)  # worse: PSNR is higher-is-better
    assert main(["compare", str(run), "--expected", str(expected)]) == 1
    out = capsys.readouterr().out
    assert "WORSE" in out and "Panini-Net" in out and "-0.20" in out

    _perturb(run, "Panini-Net", "psnr", +0.4)  # now 0.2 dB better than recorded: not a failure
    assert main(["compare", str(run), "--expected", str(expected)]) == 0
    assert "better" in capsys.readouterr().out

    _perturb(run, "Bicubic", "lpips", +0.1)  # worse: LPIPS is lower-is-better
    assert main(["compare", str(run), "--expected", str(expected)]) == 1


def test_a_value_missing_from_the_run_fails(tmp_path, capsys):
    run = make_run(tmp_path, theta=False, failure=False)
    expected = tmp_path / "expected.toml"
    main(["compare", str(run), "--write-expected", str(expected)])
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["method"] != "Bicubic"))
    capsys.readouterr()
    assert main(["compare", str(run), "--expected", str(expected)]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_judge_directions():
    e = Expected("t", "m", "psnr", value=10.0, tolerance=0.5, direction="higher", source="s")
    assert [judge(e, v) for v in (10.4, 9.6, 9.4, 11.0, None)] == ["ok", "ok", "worse", "better", "missing"]
    e = Expected("t", "m", "fid", value=10.0, tolerance=0.5, direction="lower", source="s")
    assert [judge(e, v) for v in (10.6, 9.0)] == ["worse", "better"]
    e = Expected("t", "m", "theta", value=0.5, tolerance=0.05, direction="both", source="s")
    assert [judge(e, v) for v in (0.56, 0.44, 0.52)] == ["worse", "worse", "ok"]


@pytest.mark.parametrize("body, message", [
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ntolerance=1\ndirection="up"\nsource="s"\n',
     "direction 'up'"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue="1"\ntolerance=1\ndirection="higher"\nsource="s"\n',
     "key 'value' must be a number"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ndirection="higher"\nsource="s"\n',
     "missing key(s) tolerance"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ntolerance=1\ndirection="higher"\nsource="s"\n'
     'colour="red"\n', "unknown key 'colour'"),
])
def test_bad_expected_files(tmp_path, body, message):
    path = tmp_path / "e.toml"
    path.write_text(body)
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_expected(path)


def test_compare_against_the_paper_marks_unreproduced_rows(tmp_path, capsys):
    from bench.experiment import EXPECTED_DIR

    run = make_run(tmp_path, method_names=("GFP-GAN",), theta=False, failure=False)
    assert main(["compare", str(run), "--expected", str(EXPECTED_DIR / "paper.toml"), "--all"]) == 1
    out = capsys.readouterr().out
    assert "GPEN" in out and "MISSING" in out and "12 values checked" in out  # 9 + table1_presets' 3
