"""Issue 15 item 7: the pre/post-processing steps where the official code differs from plain torch.

pSp's inference resizes the 8-bit 64 px input with PIL bilinear (default here, torch bilinear is an
option); GPEN's `tensor2img` truncates to uint8 (default for GPEN, rounding elsewhere). Both recorded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BenchError
from bench.io import quantize_uint8, read_rgb8
from bench.methods import create_method
from bench.outputs import to_uint8


def lq_8bit(size: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    """A batch that is exactly 8-bit (what the runner reads from PNG files)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator).float() / 255


def test_psp_default_input_is_pil_bilinear_on_the_8bit_image():
    method = create_method("psp-celebs-sr", config="tiny", random_init_seed=0)
    lq = lq_8bit(8)
    native = method.to_native(lq)
    expected = [np.asarray(Image.fromarray((im.permute(1, 2, 0) * 255).round().byte().numpy()).resize(
        (32, 32), Image.BILINEAR)) for im in lq]
    expected = torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    assert native.shape == (2, 3, 32, 32)
    assert torch.allclose(native, expected, atol=1e-6)
    assert "pil-bilinear" in method.protocol["input"]


def test_psp_torch_bilinear_is_a_recorded_option_that_differs():
    pil = create_method("psp-celebs-sr", config="tiny", random_init_seed=0)
    torch_path = create_method("psp-celebs-sr", config="tiny", random_init_seed=0, input_resize="torch-bilinear")
    lq = lq_8bit(8)
    a, b = pil.to_native(lq), torch_path.to_native(lq)
    assert "torch-bilinear" in torch_path.protocol["input"]
    assert not torch.equal(a, b)
    assert (a - b).abs().max() <= 1.01 * 2 / 255  # at most one grey level of the 256 px input apart
    with pytest.raises(BenchError, match="input_resize"):
        create_method("psp-celebs-sr", config="tiny", random_init_seed=0, input_resize="lanczos")


def test_quantize_rules():
    values = torch.tensor([0.0, 0.6 / 255, 1.6 / 255, 254.6 / 255, 1.0, 1.2, -0.1])
    assert quantize_uint8(values).tolist() == [0, 1, 2, 255, 255, 255, 0]
    assert quantize_uint8(values, "truncate").tolist() == [0, 0, 1, 254, 255, 255, 0]
    with pytest.raises(BenchError, match="quantize"):
        quantize_uint8(values, "floor")


def test_gpen_truncates_by_default_and_records_it(tmp_path):
    official = create_method("gpen-bfr-512", config="tiny", random_init_seed=0, output_policy="downsample-gt")
    rounded = create_method("gpen-bfr-512", config="tiny", random_init_seed=0, output_policy="downsample-gt",
                            quantize="round")
    assert official.quantize == "truncate" and official.protocol["quantize"].startswith("truncate")
    assert rounded.quantize == "round" and rounded.protocol["quantize"].startswith("round")
    with pytest.raises(BenchError, match="quantize"):
        create_method("gpen-bfr-512", config="tiny", random_init_seed=0, quantize="nearest")
    lq = lq_8bit(32, n=1)
    out = official.restore(lq)
    exact = out.clamp(0, 1) * 255
    # what the runner writes and what restore_folder writes both follow the method's rule
    assert np.array_equal(to_uint8(out, official.quantize)[0], exact.floor().byte()[0].permute(1, 2, 0).numpy())
    lq_dir, out_dir = tmp_path / "lq", tmp_path / "out"
    lq_dir.mkdir()
    Image.fromarray((lq[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(lq_dir / "a.png")
    official.restore_folder(lq_dir, out_dir)
    written = read_rgb8(out_dir / "a.png")
    assert np.array_equal(written, exact.floor().byte()[0].permute(1, 2, 0).numpy())
    assert not np.array_equal(written, exact.round().byte()[0].permute(1, 2, 0).numpy())
