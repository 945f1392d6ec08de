"""Experiment files: built-ins validate, strict errors name the key, --set overrides, paper numbers."""

from __future__ import annotations

import re

import pytest

from bench.cli import main
from bench.config import apply_overrides as apply_to
from bench.config import to_toml
from bench.errors import BenchError
from bench.expected import load_expected
from bench.experiment import EXPECTED_DIR, ExperimentConfig, builtin_experiments, load_experiment, validate
from conftest import shared_path

MINIMAL = {"experiment": {"name": "x"}, "testsets": [{"name": "t", "task": "mfr"}],
           "methods": [{"name": "Bicubic", "method": "bicubic"}]}


def test_every_builtin_experiment_validates():
    names = builtin_experiments()
    assert {"table1_mfr", "table2_sr16", "table3_fusion", "table4_theta", "fig7_dissection", "demo", "ci"} <= set(names)
    for name in names:
        exp = load_experiment(name)
        assert exp.config["methods"] and exp.config["testsets"]
        if exp.config["experiment"]["expected"]:
            assert exp.expected_file().exists()


def test_defaults_are_filled_in_and_saved_config_is_complete():
    cfg = validate(MINIMAL, "x.toml")
    assert cfg["experiment"]["batch_size"] == 4 and cfg["testsets"][0]["count"] == 100
    assert cfg["methods"][0]["options"] == {} and cfg["methods"][0]["restore"] is True
    assert validate(cfg, "again") == cfg  # the resolved config is itself a valid experiment


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["testsets"][0].update(cont=3), "unknown key 'testsets[0].cont'; did you mean 'testsets[0].count'"),
    (lambda c: c["testsets"][0].update(count="ten"), "key 'testsets[0].count' must be an integer"),
    (lambda c: c["testsets"][0].update(count=True), "key 'testsets[0].count' must be an integer"),
    (lambda c: c["experiment"].update(metrics="psnr"), "key 'experiment.metrics' must be a list"),
    (lambda c: c["experiment"].update(metrics=["psnr", 3]), "key 'experiment.metrics[1]' must be a string"),
    (lambda c: c["testsets"][0].update(task="deblur"), "key 'testsets[0].task' is 'deblur'; choose one of"),
    (lambda c: c["experiment"].update(batch_size=0), "key 'experiment.batch_size' is 0; it must be >= 1"),
    (lambda c: c.update(method=[]), "unknown key 'method'; did you mean 'methods'"),
    (lambda c: c["methods"][0].pop("method"), "missing required key 'methods[0].method'"),
    (lambda c: c["methods"][0].update(testsets=["nope"]), "names test set 'nope', which is not defined"),
    (lambda c: c["methods"][0].update(analysis=["fft"]), "'methods[0].analysis[0]' is 'fft'; choose one of 'theta'"),
    (lambda c: c["methods"].append(dict(c["methods"][0])), "'methods[1].name' = 'Bicubic' is used twice"),
    (lambda c: c.update(report={"crops": {"eyes": [0.5, 0.1, 0.2, 0.3]}}), "'report.crops.eyes' must be"),
])
def test_bad_values_name_the_key(mutate, message):
    import copy

    cfg = copy.deepcopy(MINIMAL)
    mutate(cfg)
    with pytest.raises(BenchError, match=re.escape(message)):
        validate(cfg, "exp.toml")


def apply_overrides(data, overrides, where):
    return apply_to(data, overrides, ExperimentConfig, where)


def test_set_overrides_by_name_and_index_with_toml_values():
    cfg = apply_overrides(MINIMAL, ["testsets.t.count=7", "methods.0.options={ out_size = 512 }",
                                    "experiment.metrics=[\"psnr\"]", "experiment.title=plain words"], "x")
    cfg = validate(cfg, "x")
    assert cfg["testsets"][0]["count"] == 7 and cfg["methods"][0]["options"] == {"out_size": 512}
    assert cfg["experiment"]["metrics"] == ["psnr"] and cfg["experiment"]["title"] == "plain words"
    assert MINIMAL["testsets"][0].get("count") is None  # the input is not modified
    with pytest.raises(BenchError, match="no item named 'u'"):
        apply_overrides(MINIMAL, ["testsets.u.count=1"], "x")
    with pytest.raises(BenchError, match="expected KEY=VALUE"):
        apply_overrides(MINIMAL, ["testsets.t.count"], "x")
    with pytest.raises(BenchError, match="unknown key 'testsets\\[0\\].seeds'"):
        validate(apply_overrides(MINIMAL, ["testsets.t.seeds=1"], "x"), "x")
    with pytest.raises(BenchError, match="must be an integer, got 'many'"):
        load_experiment("ci", ["testsets.synthetic-mfr.count=many"])
    with pytest.raises(BenchError, match="unknown key 'testset'; did you mean 'testsets'"):
        apply_overrides(MINIMAL, ["testset.t.count=1"], "x")
    with pytest.raises(BenchError, match="pick an item of 'testsets'"):
        apply_overrides(MINIMAL, ["testsets.count=1"], "x")


def test_set_wildcard_applies_to_every_item():
    exp = load_experiment("ci", ["testsets.*.preset=sr16", "testsets.1.count=3"])
    assert [t.preset for t in exp.spec.testsets] == ["sr16"] * 3
    assert [t.count for t in exp.spec.testsets] == [2, 3, 1]
    assert all(m.restore is False for m in load_experiment("ci", ["methods.*.restore=false"]).spec.methods)


def test_typed_spec_and_toml_round_trip():
    """The runner's typed spec and run.json's plain config are the same data; TOML writes it back exactly."""
    import tomllib

    for name in builtin_experiments():
        exp = load_experiment(name)
        assert exp.spec.experiment.name == exp.config["experiment"]["name"] == exp.name
        assert validate(tomllib.loads(to_toml(exp.config)), name) == exp.config
    assert load_experiment("ci").config_hash() == load_experiment("ci").config_hash()
    assert load_experiment("ci", ["testsets.0.count=3"]).config_hash() != load_experiment("ci").config_hash()


def test_environment_variables_in_paths(monkeypatch, tmp_path):
    exp = load_experiment("table1_mfr")
    monkeypatch.delenv("CELEBA_HQ", raising=False)
    with pytest.raises(BenchError, match=r"uses \$CELEBA_HQ, which is not set.*--set testsets.celeba-hq-mfr"):
        exp.path(exp.config["testsets"][0]["source"], "testsets.celeba-hq-mfr.source")
    monkeypatch.setenv("CELEBA_HQ", str(tmp_path))
    assert exp.path(exp.config["testsets"][0]["source"], "x") == tmp_path


def test_cli_reports_a_config_error_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nname = "x"\nbatch_size = "big"\n')
    assert main(["run", str(bad), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "experiment.batch_size" in err and str(bad) in err
    bad.write_text("[experiment\n")
    assert main(["run", str(bad), "--check"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["run", "no-such-experiment", "--check"]) == 2
    assert "built-in: ci" in capsys.readouterr().err
    assert main(["run", "ci", "--check"]) == 0
    capsys.readouterr()
    assert main(["run", "ci", "--set", "testsets.*.count=5", "--print-config"]) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    assert load_experiment(printed).config == load_experiment("ci", ["testsets.*.count=5"]).config


def test_paper_values_match_the_paper_text():
    """Every published number in paper.toml is in the paper's table rows, in the same place."""
    text = shared_path("paper", "panini-net-aaai22.txt").read_text(encoding="utf-8")
    values = load_expected(EXPECTED_DIR / "paper.toml")
    assert len(values) == 9 + 9 + 4 + 4 + 3  # + table1_presets: Panini-Net PSNR 18.01 per preset test set
    rows = {"GFP-GAN": "GFP-GAN (CVPR'21)", "GPEN": "GPEN (CVPR'21)", "pSp": "pSp (CVPR'21)",
            "GLEAN": "GLEAN (CVPR'21)", "Panini-Net with Cat-Conv": "Panini-Net with Cat-Conv",
            "Panini-Net with DAFI": "Panini-Net with DAFI (ours)"}
    tables = {"table1": "Table 1:", "table2": "Table 2:", "table3": "Table 3:"}
    for entry in values:
        if entry.table == "table4":
            theta = re.search(r"usage ratio θ\t([\d.\t]+)", text).group(1).split()
            r = int(entry.condition.split("=")[1])
            assert float(theta[[16, 32, 64, 128].index(r)]) == entry.value
            continue
        block = text[text.index(tables[entry.table]):]
        label = rows.get(entry.method, "Panini-Net (ours)")
        line = next(li for li in block.splitlines() if li.startswith(label + "\t"))
        numbers = [float(v) for v in line.split("\t")[1:]]
        column = ["psnr", "fid", "lpips"].index(entry.metric)
        assert numbers[column] == entry.value, (entry, line)
        assert entry.direction == ("higher" if entry.metric == "psnr" else "lower")
