"""Every baseline adapter on a tiny random-weight configuration (CPU, seconds): restore contract,
determinism, output policies, explicit-generator noise, and the errors for bad weights or inputs."""

from __future__ import annotations

import pytest
import torch

from bench.errors import BenchError
from bench.methods import create_method
from bench.methods.gpen import FAMILY as GPEN_FAMILY
from bench.methods.gpen import GPEN

# (LQ side, output side) of each tiny configuration
SIZES = {"gfpgan-v1.3": (32, 64), "gfpgan-v1.4": (32, 64), "gpen-bfr-512": (32, 64), "glean-ffhq-16x": (8, 32),
         "psp-celebs-sr": (8, 32)}


def lq_batch(size: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(SIZES))
def test_tiny_restore_contract(name):
    method = create_method(name, config="tiny", random_init_seed=0)
    in_size, out_size = SIZES[name]
    assert (method.spec.in_size, method.spec.out_size) == (in_size, out_size)
    lq = lq_batch(in_size)
    out = method.restore(lq)
    assert out.shape == (2, 3, out_size, out_size) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1 and out.std() > 1e-3
    assert torch.equal(method.restore(lq), out), "inference must be deterministic"
    assert torch.allclose(method.restore(lq[1:]), out[1:], atol=1e-5), "batch items must not interact"
    assert method.protocol["noise"] and method.protocol["input"]
    with pytest.raises(BenchError, match=f"expected {in_size}x{in_size} input"):
        method.restore(lq_batch(in_size * 2))


def test_mfr_output_policies():
    tiny = {"config": "tiny", "random_init_seed": 0}
    native = create_method("gpen-bfr-512", output_policy="downsample-gt", **tiny)
    upsampled = create_method("gpen-bfr-512", **tiny)
    lq = lq_batch(32, n=1)
    small, big = native.restore(lq), upsampled.restore(lq)
    assert small.shape[-1] == 32 and native.protocol["eval_size"] == 32 and native.spec.out_size == 32
    assert big.shape[-1] == 64 and upsampled.protocol["output_policy"] == "bicubic"
    again = torch.nn.functional.interpolate(small, size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.allclose(big, again, atol=1e-6)
    with pytest.raises(BenchError, match="unknown output_policy"):
        create_method("gpen-bfr-512", output_policy="lanczos", **tiny)


def test_gfpgan_random_noise_only_from_an_explicit_generator():
    def run(seed):
        method = create_method("gfpgan-v1.4", config="tiny", random_init_seed=0,
                               noise_generator=torch.Generator().manual_seed(seed))
        assert method.protocol["noise"].startswith("random")
        return method.restore(lq_batch(32, n=1))

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    with pytest.raises(BenchError, match="torch.Generator"):
        create_method("gfpgan-v1.4", config="tiny", random_init_seed=0, noise_generator=3)


def test_psp_resizes_its_lq_to_the_encoder_input():
    method = create_method("psp-celebs-sr", config="tiny", random_init_seed=0)
    native = method.to_native(lq_batch(8, n=1))
    assert native.shape[-1] == 32 and "bilinear" in method.protocol["input"]


def tiny_gpen_state(narrow: float) -> dict:
    torch.manual_seed(0)  # only to make the throw-away module init cheap and repeatable
    return GPEN(**dict(GPEN_FAMILY.tiny(), narrow=narrow)).state_dict()


def test_checkpoint_of_another_method_or_version_names_the_layout(tmp_path):
    gpen_state = tiny_gpen_state(1 / 16)
    method = create_method("gpen-bfr-512", weights=gpen_state, config="tiny")  # right one loads
    assert torch.equal(method.model.final_linear[0].weight, gpen_state["final_linear.0.weight"])
    with pytest.raises(BenchError, match=r"expected GPEN FullGenerator.*wrong shape"):
        create_method("gpen-bfr-512", weights=tiny_gpen_state(1 / 8), config="tiny")
    with pytest.raises(BenchError, match=r"no 'params_ema' or 'params' entry.*GFPGANv1Clean"):
        create_method("gfpgan-v1.3", weights=gpen_state, config="tiny")
    with pytest.raises(BenchError, match=r"need 'state_dict' and 'latent_avg'.*pSp checkpoint"):
        create_method("psp-celebs-sr", weights=gpen_state, config="tiny")
    with pytest.raises(BenchError, match=r"no 'generator.encoder.\*' entries.*GLEAN"):
        create_method("glean-ffhq-16x", weights={"state_dict": gpen_state}, config="tiny")
    with pytest.raises(BenchError, match=r"no 'generator.input.input' key .*g_ema"):
        create_method("gpen-bfr-512", weights={"g_ema": gpen_state}, config="tiny")
    partial = {k: v for k, v in gpen_state.items() if not k.startswith("ecd3")}
    with pytest.raises(BenchError, match="missing key.*ecd3"):
        create_method("gpen-bfr-512", weights=partial, config="tiny")


def test_truncated_or_missing_checkpoint_file(tmp_path):
    path = tmp_path / "GPEN-BFR-512.pth"
    torch.save(tiny_gpen_state(1 / 16), path)
    assert create_method("gpen-bfr-512", weights=path, config="tiny").spec.name == "gpen-bfr-512"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BenchError, match=f"cannot read {path}"):
        create_method("gpen-bfr-512", weights=path, config="tiny")
    with pytest.raises(BenchError, match="does not exist"):
        create_method("gpen-bfr-512", weights=tmp_path / "absent.pth", config="tiny")



def test_config_and_option_errors():
    with pytest.raises(BenchError, match="bad architecture config"):
        create_method("gpen-bfr-512", config={"sizes": 3}, random_init_seed=0)
    with pytest.raises(BenchError, match="config must be 'official', 'tiny' or a dict"):
        create_method("glean-ffhq-16x", config="huge", random_init_seed=0)
    with pytest.raises(BenchError, match="either weights or random_init_seed"):
        create_method("psp-celebs-sr", weights="x.pt", config="tiny", random_init_seed=0)
    with pytest.raises(BenchError, match="only fit config='official'"):
        create_method("gfpgan-v1.3", config="tiny")
    with pytest.raises(BenchError, match="unknown option.*arch; known options: config, noise_generator"):
        create_method("gfpgan-v1.3", arch={"size": 32})
    custom = create_method("gpen-bfr-512", config=dict(GPEN_FAMILY.tiny(), size=16), random_init_seed=0)
    assert (custom.spec.in_size, custom.spec.out_size) == (16, 32)
