"""Fast inference (half-precision weights, CUDA graphs): options, dtype handling, errors, default unchanged."""

import math

import pytest
import torch

from bench.errors import BenchError
from bench.methods import create_method
from bench.methods.fast_inference import FastForward

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


def _lq(batch: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / (a - b).double().pow(2).mean().item())


def test_default_is_the_plain_fp32_model():
    method = create_method("panini-sr16", config="tiny", random_init_seed=0)
    assert method.fast_forward is None and method.protocol == {"precision": "fp32", "cuda_graph": False}
    lq = _lq(2)
    with torch.inference_mode():
        expected = ((method.model(lq * 2 - 1) + 1) / 2).clamp(0, 1)
    assert torch.equal(method.restore(lq), expected)


def test_bf16_weights_stay_close_to_fp32():
    ref = create_method("panini-sr16", config="tiny", random_init_seed=0)
    fast = create_method("panini-sr16", config="tiny", random_init_seed=0, precision="bf16")
    assert fast.protocol == {"precision": "bf16", "cuda_graph": False}
    assert {p.dtype for p in fast.model.parameters()} == {torch.bfloat16}
    lq = _lq(2)
    out, expected = fast.restore(lq), ref.restore(lq)
    assert out.dtype == torch.float32 and out.shape == expected.shape == (2, 3, 256, 256)
    assert 0 < (out - expected).abs().max() < 0.1 and _psnr(out, expected) > 40  # measured: 54 dB
    analysis = fast.analyze(lq)
    assert all(t.dtype == torch.float32 for t in analysis if t is not None)
    assert torch.equal(analysis.image, out)


def test_fast_forward_casts_input_and_returns_float32():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    expected = conv(torch.ones(1, 3, 8, 8, dtype=torch.float32)).detach()
    fast = FastForward(conv, "fp16")
    assert conv.weight.dtype == torch.float16  # converted in place
    out = fast(torch.ones(1, 3, 8, 8, dtype=torch.float64))
    assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=1e-2)


def test_bad_options_give_a_clear_error():
    with pytest.raises(BenchError, match="cuda_graph=True needs device='cuda', got device='cpu'"):
        create_method("panini-sr16", config="tiny", random_init_seed=0, cuda_graph=True)
    with pytest.raises(BenchError, match="precision must be one of fp32, fp16, bf16, got 'fp8'"):
        create_method("panini-mfr", config="tiny", random_init_seed=0, precision="fp8")
    with pytest.raises(BenchError, match="cuda_graph must be True or False"):
        create_method("panini-mfr", config="tiny", random_init_seed=0, cuda_graph="yes")
    with pytest.raises(BenchError, match="needs the model on a CUDA device"):
        FastForward(torch.nn.Conv2d(3, 3, 1), "fp32", cuda_graph=True)


def test_restore_still_checks_the_input_in_half_precision():
    method = create_method("panini-sr16", config="tiny", random_init_seed=0, precision="bf16")
    with pytest.raises(BenchError, match="NaN or infinite"):
        method.restore(torch.full((1, 3, 64, 64), float("nan")))
    with pytest.raises(BenchError, match="expected 64x64 input"):
        method.restore(torch.zeros(1, 3, 32, 32))


@needs_cuda
@pytest.mark.parametrize("task", ["mfr", "sr16"])
def test_cuda_graph_replay_matches_eager(task):
    ref = create_method(f"panini-{task}", config="tiny", random_init_seed=0, device="cuda")
    graphed = create_method(f"panini-{task}", config="tiny", random_init_seed=0, device="cuda", cuda_graph=True)
    size = ref.spec.in_size
    for batch in (1, 2, 1):
        lq = _lq(batch, size, seed=batch)
        assert torch.allclose(graphed.restore(lq), ref.restore(lq), atol=1e-4)
    assert len(graphed.fast_forward._captured) == 2  # one graph per batch size, reused
    with pytest.raises(BenchError, match="NaN or infinite"):
        graphed.restore(torch.full((1, 3, size, size), float("nan")))
