"""Panini-Net: official golden vectors, analysis hooks (masks, θ, dissection, mask bias), bad input, training."""

from __future__ import annotations

import pytest
import torch
from official_fixtures import check_fills, compare, fixture_input, load_spec, official_checkpoint

from bench.errors import BenchError
from bench.methods import create_method
from bench.methods.dre import DegradationEncoder, moco_checkpoint_to_ours
from bench.methods.panini import PaniniNet, official_config, parameter_counts, tiny_config
from bench.methods.panini_official import build_panini, load_official_panini, official_panini_to_ours


def random_lq(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """A seeded batch of LQ images in [-1, 1] (the network's native range)."""
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def tiny_mfr() -> PaniniNet:
    return build_panini("mfr", config="tiny", random_init_seed=1)


# -- official checkpoints ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("task,name", [("mfr", "panini-mfr"), ("sr", "panini-sr16")])
def test_official_golden_vectors(task, name, tmp_path, monkeypatch):
    """Released-file layout -> public loader -> one full-size forward == the official code's output."""
    model_id = f"panini_{task}"
    spec, stored, expected = load_spec(model_id)
    check_fills(spec, stored)
    checkpoint = official_checkpoint(model_id, spec, stored)
    reads = []
    if task == "mfr":  # through a file once (torch.load weights_only=True), as a loaded dict for SR
        torch.save(checkpoint, tmp_path / "panini.pth")
        checkpoint = tmp_path / "panini.pth"
        load = torch.load
        monkeypatch.setattr(torch, "load", lambda *a, **k: reads.append(a[0]) or load(*a, **k))
    method = create_method(name, weights=checkpoint)
    assert len(reads) == (task == "mfr")  # a 1.5 GB release is read once
    lq = fixture_input(spec) * 2 - 1  # the model's native input: RGB in [-1, 1]
    with torch.no_grad():
        out = method.model.analyze(lq)
    ratios = compare(spec, expected, out.image, {"masks": out.masks[0], "theta": out.theta[0], "latent": out.latent[0]})
    assert set(ratios) == {"out_pool8", "out_mean", "out_std", "sample_val", "masks", "theta", "latent"}
    bad = {k: r for k, r in ratios.items() if not r <= 1}
    assert not bad, f"outside the fixture tolerance (max error / tolerance): {bad}"


@pytest.mark.parametrize("task", ["mfr", "sr"])
def test_official_layout_maps_to_every_key_and_counts_match_spec(task):
    """All official keys map onto ours (strict, meta tensors: no compute) and the parameter totals match §3.1."""
    spec, stored, _ = load_spec(f"panini_{task}")

    def meta(e):  # shapes only, except the FIR kernels whose values the converter checks
        return stored[e["name"]] if e["fill"] == "stored" else torch.empty(e["shape"], device="meta")

    state = {"generator." + e["name"]: meta(e) for e in spec["keys"]}
    state |= {e["name"]: meta(e) for e in spec["extra_entries"]}
    from bench.methods.checkpoints import check_keys
    from bench.methods.panini_official import official_backbone_state

    with torch.device("meta"):
        model = PaniniNet(official_config(task))
    check_keys(model, official_panini_to_ours(official_backbone_state({"state_dict": state})), "fixture")
    used = sum(p.numel() for p in model.parameters())
    official_total = {"mfr": 94_339_836, "sr": 108_847_096}[task]
    dropped = {"mfr": 131_584, "sr": 0}[task]  # the unused MoCo projection head is not part of our model
    assert used == official_total - dropped


def test_wrong_task_checkpoint_is_refused():
    spec, _, _ = load_spec("panini_sr")
    state = {"generator." + e["name"]: torch.zeros(1) for e in spec["keys"]}
    with torch.device("meta"):
        model = PaniniNet(official_config("mfr"))
    with pytest.raises(BenchError, match="official panini-sr16 .*use method 'panini-sr16'"):
        load_official_panini(model, {"state_dict": state})


def test_missing_and_unexpected_keys_are_named(tiny_mfr):
    state = dict(tiny_mfr.state_dict())
    state.pop("mask_mlp.0.bias")
    state["encoder.extractor.bogus"] = torch.zeros(1)
    fresh = PaniniNet(tiny_config("mfr"))
    with pytest.raises(BenchError, match=r"missing key\(s\): mask_mlp.0.bias.*unexpected key\(s\): encoder.extractor"):
        load_official_panini(fresh, state)


def test_our_own_layout_round_trips(tiny_mfr, tmp_path):
    path = tmp_path / "ours.pth"
    torch.save({"state_dict": tiny_mfr.state_dict()}, path)
    again = build_panini("mfr", weights=path, config="tiny")
    lq = random_lq(1, 128)
    with torch.no_grad():
        assert torch.equal(tiny_mfr(lq), again(lq))


def test_moco_checkpoint_loads_query_encoder():
    enc = DegradationEncoder()
    query = {f"module.encoder_q.{k.replace('body.', 'E.').replace('projection.', 'mlp.')}": v
             for k, v in enc.state_dict().items()}
    keys = {f"module.encoder_k.{k[len('module.encoder_q.'):]}": torch.zeros_like(v) for k, v in query.items()}
    ckpt = {"epoch": 200, "state_dict": {"module.queue": torch.zeros(256, 8), **query, **keys}}
    state = moco_checkpoint_to_ours(ckpt)
    assert set(state) == set(enc.state_dict())
    assert all(torch.equal(state[k], v) for k, v in enc.state_dict().items())
    with pytest.raises(BenchError, match="encoder_q"):
        moco_checkpoint_to_ours({"state_dict": {"foo": torch.zeros(1)}})


# -- analysis hooks ---------------------------------------------------------------------------------


def test_analysis_outputs_shapes_and_determinism(tiny_mfr):
    lq = random_lq(2, 128, 0)
    with torch.no_grad():
        a, b = tiny_mfr.analyze(lq), tiny_mfr.analyze(lq)
    assert torch.equal(a.image, b.image), "two forwards must be identical (stored noise, eval BN)"
    assert a.image.shape == (2, 3, 256, 256)
    assert a.masks.shape == (2, 5, 16) and a.theta.shape == (2, 5) and a.latent.shape == (2, 14, 32)
    assert torch.allclose(a.theta, a.masks.mean(-1))
    assert ((a.masks > 0) & (a.masks < 1)).all()
    assert not torch.allclose(a.masks[0], a.masks[1]), "MFR masks depend on the input through the DRE"


def test_dissection_and_mask_bias_follow_the_equations(tiny_mfr):
    lq = random_lq(1, 128, 1)
    with torch.no_grad():
        y = tiny_mfr(lq)
        y_ife, y_gpb = tiny_mfr(lq, dissection="ife"), tiny_mfr(lq, dissection="gpb")
        # masks forced to 1: F_DAFI = F_GPB, so Y equals Y_GPB of the same masks; forced to 0: Y = Y_IFE
        assert torch.equal(tiny_mfr(lq, mask_bias=1.0), tiny_mfr(lq, mask_bias=1.0, dissection="gpb"))
        assert torch.equal(tiny_mfr(lq, mask_bias=-1.0), tiny_mfr(lq, mask_bias=-1.0, dissection="ife"))
        # zero bias changes nothing; a per-block bias moves θ of that block only
        assert torch.allclose(tiny_mfr(lq, mask_bias=0.0), y, atol=1e-6)
        bias = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.2])
        out = tiny_mfr.analyze(lq, mask_bias=bias)
        base = tiny_mfr.analyze(lq)
    assert not torch.allclose(y_ife, y) and not torch.allclose(y_gpb, y) and not torch.allclose(y_ife, y_gpb)
    assert torch.allclose(out.theta[:, :4], base.theta[:, :4])
    assert torch.allclose(out.theta[:, 4], (base.masks[:, 4] + 0.2).clamp(0, 1).mean(-1))
    assert not torch.allclose(out.image, base.image)
    with pytest.raises(ValueError, match="dissection"):
        tiny_mfr(lq, dissection="both")
    with pytest.raises(ValueError, match="mask_bias"):
        tiny_mfr(lq, mask_bias=torch.zeros(3))


def test_dense_block_inference_path_equals_the_autograd_path():
    from bench.methods.rrdb import ResidualDenseBlock

    block = ResidualDenseBlock(4, 8)
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = block(x)
    assert torch.equal(fast, block(x))  # grad enabled: the concatenating path


def test_channels_last_mode_matches_the_default_layout():
    model = build_panini("mfr", config="tiny", random_init_seed=6)
    lq = random_lq(1, 128, 2)
    with torch.no_grad():
        ref = model(lq)
        fast = model.set_channels_last()(lq)
        back = model.set_channels_last(False)(lq)
    assert torch.allclose(fast, ref, atol=1e-5) and torch.equal(back, ref)


@torch.no_grad()
def test_sr_masks_do_not_depend_on_the_input():
    out = build_panini("sr", config="tiny", random_init_seed=2).analyze(random_lq(2, 64, 0))
    assert torch.equal(out.masks[0], out.masks[1]) and out.dr.shape == (2, 16)


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lq,match",
    [
        (torch.zeros(1, 3, 64, 64), "expected 128x128 input, got 64x64"),
        (torch.zeros(1, 1, 128, 128), r"expected an RGB batch .* got \(1, 1, 128, 128\)"),
        (torch.zeros(3, 128, 128), "expected an RGB batch"),
        (torch.full((1, 3, 128, 128), float("nan")), "NaN or infinite"),
    ],
)
def test_bad_input_gives_a_clear_error(tiny_mfr, lq, match):
    with pytest.raises(BenchError, match=match):
        tiny_mfr(lq)


def test_registry_method_checks_input_and_options():
    method = create_method("panini-mfr", config="tiny", random_init_seed=0)
    assert method.spec.in_size == 128 and method.spec.out_size == 256
    with pytest.raises(BenchError, match="expected 128x128"):
        method.restore(torch.zeros(1, 3, 512, 512))
    out = method.analyze(random_lq(1, 128).add(1).div(2), dissection="gpb")
    assert out.image.min() >= 0 and out.image.max() <= 1 and out.masks.shape == (1, 5, 16)
    with pytest.raises(BenchError, match="unknown option"):
        create_method("panini-mfr", config="tiny", random_init_seed=0, colour="blue")
    with pytest.raises(BenchError, match="no released checkpoint"):
        create_method("panini-catconv-sr16")


# -- Cat-Conv and training path -----------------------------------------------------------------------


def test_catconv_has_no_masks_and_costs_more_parameters():
    with torch.device("meta"):
        dafi = parameter_counts(PaniniNet(official_config("sr")))
        cat = parameter_counts(PaniniNet(official_config("sr", fusion="catconv")))
    assert "mask_mlp" not in cat and cat["total"] > dafi["total"]
    assert cat["fusion_convs"] == 5 * (1024 * 512 * 9 + 512)
    tiny = build_panini("sr", config="tiny", fusion="catconv", random_init_seed=3)
    with torch.no_grad():
        assert tiny(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 256, 256)
    with pytest.raises(ValueError, match="catconv"):
        tiny(torch.zeros(1, 3, 64, 64), dissection="ife")


@pytest.mark.parametrize("task,fusion", [("mfr", "dafi"), ("sr", "dafi"), ("sr", "catconv")])
def test_tiny_forward_backward_reaches_every_used_parameter(task, fusion):
    model = build_panini(task, config="tiny", fusion=fusion, random_init_seed=4).train()
    for conv in [model.generator.conv1, *model.generator.convs]:
        conv.noise.weight.data.fill_(0.1)
    size = model.config.in_size
    lq = random_lq(2, size, 0)
    model(lq).abs().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("generator.style.")]
    assert not no_grad, f"parameters without gradient: {no_grad}"


def test_paper_option_freezes_the_dre():
    model = build_panini("mfr", config=tiny_config("mfr", train_dre=False), random_init_seed=5).train()
    assert not any(p.requires_grad for p in model.dre.parameters())
    assert not model.dre.training and model.encoder.training


def test_forward_benchmark_runs_on_a_tiny_config(capsys):
    import importlib.util
    import json

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("panini_forward", REPO / "benchmarks" / "panini_forward.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--config", "tiny", "--task", "sr", "--repeats", "1", "--cpu-bf16"]) == 0
    report = json.loads(capsys.readouterr().out)
    result = report["results"][0]
    assert result["cpu_fp32"]["n"] == 1 and result["cpu_fp32"]["median_s"] > 0
    assert result["cpu_fp32_channels_last"]["max_abs_dev_vs_default_layout"] < 1e-4
    assert result["cpu_bf16_weights"]["psnr_vs_fp32_db"] > 40 and result["cpu_bf16_weights"]["finite"]
