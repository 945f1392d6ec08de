"""`bench compare`: passes on the run it was recorded from, fails when a value regresses."""

from __future__ import annotations

import json

import pytest
from fake_run import make_run

from bench.cli import main
from bench.errors import BenchError
from bench.expected import Expected, judge, load_expected


def _perturb(run, method, metric, delta):
    """Shift a result (with its interval) by `delta`, as a run whose scores moved would."""
    path = run / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["method"] == method and row["metric"] == metric:
            for key in ("value", "ci_low", "ci_high"):
                row[key] += delta
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
    assert "4 reproduced" in capsys.readouterr().out

    _perturb(run, "Panini-Net", "psnr", -0.2)  # worse: PSNR is higher-is-better
    assert main(["compare", str(run), "--expected", str(expected)]) == 1
    out = capsys.readouterr().out
    assert "worse" in out and "Panini-Net" in out and "-0.20" in out

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
    assert "missing" in capsys.readouterr().out


def test_judge_directions():
    e = Expected("t", "m", "psnr", value=10.0, tolerance=0.5, direction="higher", source="s")
    assert [judge(e, v) for v in (10.4, 9.6, 9.4, 11.0, None)] == ["reproduced", "reproduced", "worse", "better",
                                                                  "missing"]
    e = Expected("t", "m", "fid", value=10.0, tolerance=0.5, direction="lower", source="s")
    assert [judge(e, v) for v in (10.6, 9.0)] == ["worse", "better"]
    e = Expected("t", "m", "theta", value=0.5, tolerance=0.05, direction="both", source="s")
    assert [judge(e, v) for v in (0.56, 0.44, 0.52)] == ["worse", "worse", "reproduced"]


def test_a_wide_interval_that_holds_the_published_value_counts_as_reproduced():
    e = Expected("t", "m", "psnr", value=10.0, tolerance=0.5, direction="higher", source="s")
    assert judge(e, 11.0, ci=(10.2, 11.8)) == "reproduced"  # CI widened by 0.5 reaches 9.7..12.3
    assert judge(e, 11.0, ci=(10.6, 11.4)) == "better"  # widened 10.1..11.9 misses 10.0
    assert judge(e, 8.0, ci=(7.0, 9.4)) == "worse"


@pytest.mark.parametrize("body, message", [
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ntolerance=1\ndirection="up"\nsource="s"\n',
     "direction 'up'"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue="1"\ntolerance=1\ndirection="higher"\nsource="s"\n',
     "key 'value' must be a number"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ndirection="higher"\nsource="s"\n',
     "missing key(s) tolerance"),
    ('[[values]]\ntable="t"\nmethod="m"\nmetric="psnr"\nvalue=1\ntolerance=1\ndirection="higher"\nsource="s"\n'
     'colour="red"\n', "unknown key 'colour'"),
    ('[[claims]]\ntable="t"\nmetric="psnr"\nbetter="a"\nworse="b"\ncolour="red"\n', "unknown key 'colour'"),
    ('[[claims]]\ntable="t"\nmetric="psnr"\nbetter="a"\n', "needs key(s) worse"),
    ('[[claims]]\ntype="rank"\ntable="t"\n', "type 'rank'"),
    ('[[claims]]\ntype="trend"\ntable="t"\nmetric="theta"\nmethod="m"\nparameter="r"\ndirection="up"\n',
     "direction 'up'"),
    ('[[claims]]\ntype="params"\ntable="t"\nbetter="a"\nworse="b"\nmetric="psnr"\n', "mean nothing"),
    ('[[claims]]\ntable="t"\nmetric="psnr"\nbetter="a"\nworse="a"\n', "both 'a'"),
    ('[[values]]\ntable="t"\nmethod="a"\nmetric="psnr"\nvalue=10\ntolerance=1\ndirection="higher"\nsource="s"\n'
     '[[values]]\ntable="t"\nmethod="b"\nmetric="psnr"\nvalue=12\ntolerance=1\ndirection="higher"\nsource="s"\n'
     '[[claims]]\ntable="t"\nmetric="psnr"\nbetter="a"\nworse="b"\n', "published values say the opposite"),
])
def test_bad_expected_files(tmp_path, body, message):
    """Values and claims: every bad key, type or value is an error that names it."""
    path = tmp_path / "e.toml"
    path.write_text(body)
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_expected(path)


def test_compare_against_the_paper_marks_unreproduced_rows(tmp_path, capsys):
    from bench.experiment import EXPECTED_DIR

    run = make_run(tmp_path, method_names=("GFP-GAN",), theta=False, failure=False)
    assert main(["compare", str(run), "--expected", str(EXPECTED_DIR / "paper.toml")]) == 1
    out = capsys.readouterr().out
    assert "GPEN" in out and "missing" in out and "12 values checked, 9 claims judged" in out
    assert "no results of GPEN and GFP-GAN" in out  # a claim the run cannot judge says why  # 9 + table1_presets' 3
