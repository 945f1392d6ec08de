"""bench.methods.builder: one builder for every network family (settings, seeded init, strict load)."""

from __future__ import annotations

import pytest
import torch

from bench.errors import BenchError
from bench.methods import generic, gfpgan, glean, gpen, psp
from bench.methods.builder import build_model
from bench.methods.panini_official import panini_family
from bench.methods.registry import MethodSpec

FAMILIES = {"gfpgan": gfpgan.FAMILY, "gpen": gpen.FAMILY, "glean": glean.FAMILY, "psp": psp.FAMILY,
            "panini-sr": panini_family("sr")}


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_seeded_builds_repeat_and_leave_the_global_rng_alone(name):
    family = FAMILIES[name]
    before = torch.random.get_rng_state()
    a = build_model(family, "tiny", random_init_seed=3)
    b = build_model(family, "tiny", random_init_seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    other = build_model(family, "tiny", random_init_seed=4)
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), other.state_dict().values(),
                                                      strict=True))


def test_a_checkpoint_round_trips_through_the_family_filter_strictly(tmp_path):
    model = build_model(gpen.FAMILY, "tiny", random_init_seed=0)
    path = tmp_path / "ours.pth"
    torch.save(model.state_dict(), path)
    loaded = build_model(gpen.FAMILY, "tiny", weights=path)
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), loaded.state_dict().values(),
                                                  strict=True))
    state = model.state_dict()
    dropped = next(iter(state))
    del state[dropped]
    with pytest.raises(BenchError, match=rf"GPEN-BFR weights \(expected GPEN FullGenerator.*missing key.*{dropped}"):
        build_model(gpen.FAMILY, "tiny", weights=state)
    with pytest.raises(BenchError, match="either weights or random_init_seed"):
        build_model(gpen.FAMILY, "tiny", weights=path, random_init_seed=0)
    with pytest.raises(BenchError, match="only fit config='official'"):
        build_model(panini_family("mfr"), "tiny", weights_name="panini-mfr")


def test_file_based_methods_go_through_method_init(tmp_path):
    spec = MethodSpec(name="f", task="any", in_size=None, out_size=None)
    folder = generic.FolderMethod(spec, tmp_path)
    command = generic.CommandMethod(spec, "true {input_dir} {output_dir}", None)
    assert folder.model is None and folder.protocol == {"source": str(tmp_path)} and folder.device == "cpu"
    assert command.model is None and command.protocol == {"command": "true {input_dir} {output_dir}"}
