"""Claims and verdicts on known truth: `folder` methods whose outputs are the GT plus Gaussian noise of a
known strength, so which method is better (and how that changes with r) is known before the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_run import make_run

from bench.by_degradation import BY_DEGRADATION_FILE, binner, by_degradation
from bench.claims import judge_claims, save_features, verdict_of
from bench.cli import main
from bench.expected import Claim, derive_order_claims, load_expected_file
from bench.experiment import EXPECTED_DIR, load_experiment
from bench.io import read_jsonl, read_rgb8, write_png
from bench.metrics.fid import InceptionDistances
from bench.runner import Runner

COUNT = 12
# method -> noise standard deviation (8-bit levels) as a function of the image's downsampling rate r
NOISE = {"Clean": lambda r: 4.0, "Noisy": lambda r: 16.0, "Noisy twin": lambda r: 16.0,
         "Fragile": lambda r: 4.0 + 0.15 * r}


def _noisy_folders(testset, root) -> dict[str, str]:
    rows = read_jsonl(testset / "manifest.jsonl")
    folders = {}
    for k, (name, std) in enumerate(NOISE.items()):
        folder = root / f"method{k}"
        for index, row in enumerate(rows):
            gt = read_rgb8(testset / "gt" / f"{row['id']}.png").astype(np.float64)
            noise = np.random.default_rng([k, index]).normal(0.0, std(row["params"]["r"]), gt.shape)
            write_png(folder / f"{row['id']}.png", np.clip(np.round(gt + noise), 0, 255).astype(np.uint8))
        folders[name] = str(folder)
    return folders


CLAIMS = """
[[claims]]
table = "truth"
metric = "psnr"
better = "Clean"
worse = "Noisy"
source = "true: 4 < 16 noise"

[[claims]]
table = "truth"
metric = "psnr"
better = "Noisy"
worse = "Noisy twin"
source = "equal noise"

[[claims]]
type = "slope"
table = "truth"
metric = "psnr"
better = "Clean"
worse = "Fragile"
parameter = "r"
source = "true: Fragile's noise grows with r"
"""
WRONG = """
[[claims]]
table = "truth"
metric = "psnr"
better = "Noisy"
worse = "Clean"
source = "false: the wrong direction"
"""


def _testset(folder, count: int = COUNT, size: int = 96):
    """A small hand-made MFR test set: synthetic faces with a spread of r (and sigma) in the manifest."""
    from fake_run import _face

    from bench.io import sha256_file

    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        image_id = f"face{index:02d}"
        gt = _face(rng, size)
        write_png(folder / "gt" / f"{image_id}.png", gt)
        write_png(folder / "lq" / f"{image_id}.png", gt[::4, ::4])
        rows.append({"id": image_id, "source": f"synthetic:{index}",
                     "params": {"r": 10.0 + 190.0 * index / (count - 1), "sigma": float(rng.uniform(0.2, 10))}})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = {"task": "mfr", "preset": "hand-made", "count": count, "testset_id": sha256_file(folder / "manifest.jsonl")}
    (folder / "testset.json").write_text(json.dumps(info))


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """A run of four noise `folder` methods on 12 faces; returns (run folder, tmp root, Clean's PSNR)."""
    root = tmp_path_factory.mktemp("truth")
    _testset(root / "testset")
    folders = _noisy_folders(root / "testset", root)
    methods = "".join(f'[[methods]]\nname = "{name}"\nmethod = "folder"\noptions = {{ path = "{path}" }}\n\n'
                      for name, path in folders.items())
    experiment = root / "truth.toml"
    experiment.write_text(f'[experiment]\nname = "truth"\ntable = "truth"\nmetrics = ["psnr"]\nbootstrap = 200\n'
                          f'expected = "{root / "claims.toml"}"\n\n'
                          f'[[testsets]]\nname = "faces"\ntask = "mfr"\npath = "{root / "testset"}"\n\n{methods}')
    run = root / "run"
    Runner(load_experiment(experiment), run, progress=False, log=lambda *a, **k: None).run()
    clean = next(r["value"] for r in read_jsonl(run / "results.jsonl") if r["method"] == "Clean")
    return run, root, clean


def _compare(run, path, *extra) -> int:
    return main(["compare", str(run), "--expected", str(path), *extra])


def test_known_truth_verdicts_and_exit_codes(truth, capsys):
    run, root, clean = truth
    path = root / "claims.toml"
    path.write_text(CLAIMS)
    capsys.readouterr()
    assert _compare(run, path) == 0  # supported + inconclusive pass without --strict
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("claim ")]
    verdicts = {line.split()[1] for line in lines[1:]}
    assert verdicts == {"supported", "inconclusive"}
    assert "Clean better than Noisy on psnr" in next(line for line in lines if line.split()[1] == "supported")
    assert "Noisy better than Noisy twin" in next(line for line in lines if "inconclusive" in line)
    assert all("faces" in line and "seed 0" in line for line in lines[1:])
    assert _compare(run, path, "--strict") == 1  # inconclusive fails under --strict

    wrong = root / "wrong.toml"
    wrong.write_text(WRONG)
    capsys.readouterr()
    assert _compare(run, wrong) == 1
    assert "contradicted" in capsys.readouterr().out


def test_slope_claim_sees_the_advantage_grow_with_r(truth):
    run, root, _ = truth
    (root / "slope.toml").write_text(CLAIMS)
    _, claims = load_expected_file(root / "slope.toml")
    slope = judge_claims(run, [c for c in claims if c.type == "slope"])[0]
    assert slope.verdict == "supported" and slope.difference > 0 and slope.ci[0] > 0 and slope.n == COUNT
    reverse = Claim(table="truth", type="slope", metric="psnr", better="Fragile", worse="Clean", parameter="r")
    assert judge_claims(run, [reverse])[0].verdict == "contradicted"


def test_trend_claims_over_a_manifest_parameter(truth):
    run, _, _ = truth
    falls = Claim(table="truth", type="trend", metric="psnr", method="Fragile", parameter="r", direction="decreasing")
    rises = Claim(table="truth", type="trend", metric="psnr", method="Fragile", parameter="r", direction="increasing")
    flat = Claim(table="truth", type="trend", metric="psnr", method="Clean", parameter="r", direction="increasing")
    verdicts = judge_claims(run, [falls, rises, flat])
    assert [v.verdict for v in verdicts[:2]] == ["supported", "contradicted"]
    assert verdicts[2].verdict in ("inconclusive", "contradicted")  # constant noise: no rise
    assert "4 r levels" in verdicts[0].test and verdicts[0].n == COUNT


def test_a_published_value_beaten_by_10_db_is_better_and_fails_under_strict(truth, capsys):
    run, root, clean = truth
    path = root / "value.toml"
    path.write_text(f'[[values]]\ntable = "truth"\nmethod = "Clean"\nmetric = "psnr"\nvalue = {clean - 10}\n'
                    'tolerance = 0.5\ndirection = "higher"\nsource = "made up"\n')
    capsys.readouterr()
    assert _compare(run, path) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("value ") and "Clean" in line)
    assert line.split()[1] == "better" and "faces" in line and "+10.00" in line
    assert _compare(run, path, "--strict") == 1
    path.write_text(path.read_text().replace(f"value = {clean - 10}", f"value = {clean + 10}"))
    assert _compare(run, path) == 1  # 10 dB short of the published value: worse


def test_run_writes_results_by_degradation(truth):
    run, _, _ = truth
    rows = read_jsonl(run / BY_DEGRADATION_FILE)
    assert {r["parameter"] for r in rows} == {"r", "sigma"}
    for method in NOISE:
        mine = [r for r in rows if r["method"] == method and r["parameter"] == "r"]
        assert sum(r["n"] for r in mine) == COUNT and all(r["ci_low"] <= r["mean"] <= r["ci_high"] for r in mine)
    fragile = sorted((r for r in rows if r["method"] == "Fragile" and r["parameter"] == "r"), key=lambda r: r["bin"])
    assert fragile[0]["mean"] > fragile[-1]["mean"]  # more noise at large r: PSNR falls across the bins


def test_binning_uses_quantiles_or_one_bin_per_value():
    assert binner(np.array([16.0, 32, 64, 128, 16, 32]))(np.array([16.0, 128, 64])).tolist() == [0, 3, 2]
    values = np.arange(100, dtype=float)
    index = binner(values, 4)(values)
    assert index.min() == 0 and index.max() == 3 and np.bincount(index).tolist() == [25, 25, 25, 25]
    rows = [{"testset": "t", "method": "m", "metric": "psnr", "id": str(i), "value": float(i),
             "params": {"r": float(i)}} for i in range(20)]
    out = by_degradation(rows, bins=4, resamples=50)
    assert [r["n"] for r in out] == [5, 5, 5, 5] and [r["mean"] for r in out] == [2.0, 7.0, 12.0, 17.0]


class _GivenFeatures:
    """Extractor stand-in: the test adds features itself (add_features), so no network runs."""

    conventions = {"backend": "features given by the test"}
    weights_sha256 = "none"

    def __call__(self, images):
        raise AssertionError("the test passes features directly")


def test_set_metric_claims_resample_the_same_images_for_both_methods_and_the_gt(tmp_path):
    run = make_run(tmp_path, method_names=("Near", "Far"), image_ids=tuple(f"i{k}" for k in range(30)),
                   theta=False, failure=False)
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(30, 8))
    ids = [f"i{k}" for k in range(30)]
    ts_id = "f" * 64
    fids = {}
    for name, scale in (("Near", 0.2), ("Far", 1.5)):  # the state the runner hands over after scoring
        metric = InceptionDistances(outputs=("fid",), extractor=_GivenFeatures(), ci_resamples=0)
        metric.add_features(gt + rng.normal(scale=scale, size=gt.shape), gt, ids)
        fids[name] = metric.compute()[0]["value"]
        save_features(run, name, ts_id, [metric.state_dict()])
    with open(run / "results.jsonl", "a") as file:
        file.write(json.dumps({"table": "table1", "method": "Near", "testset": "mfr<1>", "metric": "fid",
                               "value": 1.0, "higher_is_better": False}) + "\n")
    right = Claim(table="table1", metric="fid", better="Near", worse="Far")
    wrong = Claim(table="table1", metric="fid", better="Far", worse="Near")
    verdicts = judge_claims(run, [right, wrong], resamples=50)
    assert [v.verdict for v in verdicts] == ["supported", "contradicted"]
    assert verdicts[0].difference == pytest.approx(fids["Near"] - fids["Far"]) and verdicts[0].difference < 0
    assert verdicts[0].n == 30 and "same image indices" in verdicts[0].test
    no_features = Claim(table="table1", metric="kid", better="Near", worse="Far")
    (run / "features" / "Far" / f"{ts_id}.npz").unlink()
    assert judge_claims(run, [no_features])[0].verdict == "missing"


def test_parameter_and_trend_claims(tmp_path):
    run = make_run(tmp_path, method_names=("Small", "Big"), theta=True, failure=False)
    info = json.loads((run / "run.json").read_text())
    info["methods"]["Small"]["params"], info["methods"]["Big"]["params"] = 10, 1000
    (run / "run.json").write_text(json.dumps(info))
    fewer = Claim(table="table1", type="params", better="Small", worse="Big")
    more = Claim(table="table1", type="params", better="Big", worse="Small")
    assert [v.verdict for v in judge_claims(run, [fewer, more])] == ["supported", "contradicted"]
    # fake_run's θ rows rise with r (0.45, 0.55, 0.62, 0.74): no manifest parameter, so the trend is missing
    rising = Claim(table="table4", type="trend", metric="theta", method="Big", parameter="r", direction="increasing")
    assert judge_claims(run, [rising])[0].verdict == "missing"


def test_verdict_words():
    assert verdict_of((0.1, 0.3), 1.0) == "supported" and verdict_of((-0.3, -0.1), 1.0) == "contradicted"
    assert verdict_of((-0.1, 0.3), 1.0) == "inconclusive" and verdict_of((-0.3, -0.1), -1.0) == "supported"


def test_paper_claims_are_the_published_orders_plus_the_prose_claims():
    values, claims = load_expected_file(EXPECTED_DIR / "paper.toml")
    assert len(claims) >= 8

    def key(c):
        return (c.table, c.metric, c.testset, c.better, c.worse)

    orders = {key(c) for c in claims if c.type == "order"}
    assert orders == {key(c) for c in derive_order_claims(values)}  # cannot drift from the [[values]]
    assert ("table2", "fid", "", "Panini-Net", "GLEAN") in orders
    assert ("table2", "psnr", "", "GLEAN", "Panini-Net") in orders
    assert ("table3", "psnr", "", "Panini-Net with DAFI", "Panini-Net with Cat-Conv") in orders
    prose = {(c.type, c.table, c.better, c.worse, c.method, c.parameter, c.direction)
             for c in claims if c.type != "order"}
    assert prose == {("trend", "table4", "", "", "Panini-Net", "r", "increasing"),
                     ("params", "table3", "Panini-Net with DAFI", "Panini-Net with Cat-Conv", "", "", ""),
                     ("params", "table2", "Panini-Net", "GLEAN", "", "", "")}
