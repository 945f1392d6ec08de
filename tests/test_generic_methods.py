"""Generic adapters: bicubic, identity, folder (results made elsewhere) and command (external program)."""

from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BenchError
from bench.io import list_ids, read_image, write_png
from bench.methods import create_method
from conftest import shared_path


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def write_folder(folder, batch: torch.Tensor, ids=None) -> list[str]:
    ids = ids or [f"{i:05d}" for i in range(len(batch))]
    for image_id, image in zip(ids, batch, strict=True):
        write_png(folder / f"{image_id}.png", image)
    return ids


def test_bicubic_upsamples_to_out_size_and_matches_torch():
    lq = images(2, 16)
    method = create_method("bicubic", out_size=64)
    out = method.restore(lq)
    expected = torch.nn.functional.interpolate(lq * 2 - 1, size=(64, 64), mode="bicubic", align_corners=False)
    assert out.shape == (2, 3, 64, 64) and method.spec.out_size == 64
    assert torch.allclose(out, ((expected + 1) / 2).clamp(0, 1), atol=1e-6)
    assert create_method("bicubic").spec.out_size == 1024


def test_identity_returns_the_input():
    lq = images(1, 12)
    assert torch.allclose(create_method("identity").restore(lq), lq, atol=1e-6)


@pytest.mark.parametrize("bad", [torch.rand(3, 8, 8), torch.rand(1, 1, 8, 8), torch.full((1, 3, 8, 8), float("nan"))])
def test_bad_tensors_are_rejected(bad):
    with pytest.raises(BenchError):
        create_method("identity").restore(bad)


def test_generic_methods_refuse_weights_and_bad_options(tmp_path):
    with pytest.raises(BenchError, match="takes no weights"):
        create_method("bicubic", weights="x.pth")
    with pytest.raises(BenchError, match="out_size"):
        create_method("bicubic", out_size=-3)
    with pytest.raises(BenchError, match="path="):
        create_method("folder")
    with pytest.raises(BenchError, match="not found"):
        create_method("folder", path=tmp_path / "nope")
    with pytest.raises(BenchError, match="template"):
        create_method("command", template="echo {input_dir}")
    with pytest.raises(BenchError, match="command not found"):
        create_method("command", template="no-such-program-xyz {input_dir} {output_dir}")
    with pytest.raises(BenchError, match="unknown method 'nope'"):
        create_method("nope")


def test_default_restore_folder_is_resumable(tmp_path):
    ids = write_folder(tmp_path / "lq", images(3, 8))
    method = create_method("bicubic", out_size=16)
    assert method.restore_folder(tmp_path / "lq", tmp_path / "out", batch_size=2) == ids
    assert list_ids(tmp_path / "out") == ids and read_image(tmp_path / "out" / "00000.png").shape == (3, 16, 16)
    kept = (tmp_path / "out" / "00001.png").stat().st_mtime_ns
    (tmp_path / "out" / "00002.png").unlink()
    method.restore_folder(tmp_path / "lq", tmp_path / "out")
    assert (tmp_path / "out" / "00002.png").exists() and (tmp_path / "out" / "00001.png").stat().st_mtime_ns == kept


def test_folder_matches_by_stem_and_reports_missing(tmp_path):
    ids = write_folder(tmp_path / "lq", images(2, 8))
    results = tmp_path / "results"
    results.mkdir()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(results / f"{ids[0]}.jpg", quality=100)
    method = create_method("folder", path=results)
    assert method.works_on_folders and method.model is None
    with pytest.raises(BenchError, match=f"no result for 1 of 2 test images \\({ids[1]}\\)"):
        method.restore_folder(tmp_path / "lq", tmp_path / "out")
    write_png(results / f"{ids[1]}.png", images(1, 16)[0])
    method.restore_folder(tmp_path / "lq", tmp_path / "out")
    assert list_ids(tmp_path / "out") == ids
    with pytest.raises(BenchError, match="expected 32x32"):
        create_method("folder", path=results, out_size=32).restore_folder(tmp_path / "lq", tmp_path / "out2")
    with pytest.raises(BenchError, match="restore_folder"):
        method.restore(images(1, 8))


def test_folder_with_the_official_panini_results(tmp_path):
    lq_dir = shared_path("data", "panini-examples", "MFR")
    method = create_method("folder", path=shared_path("data", "panini-examples", "MFR_result"), out_size=1024)
    ids = method.restore_folder(lq_dir, tmp_path / "out", ids=["00001", "00002"])
    source = np.asarray(Image.open(shared_path("data", "panini-examples", "MFR_result", "00001.png")).convert("RGB"))
    copied = np.asarray(Image.open(tmp_path / "out" / "00001.png"))
    assert ids == ["00001", "00002"] and copied.shape == (1024, 1024, 3) and np.array_equal(copied, source)


# An "external method": doubles the size of every PNG with nearest-neighbour and inverts it.
EXTERNAL = """
import sys, pathlib
import numpy as np
from PIL import Image
src, dst = map(pathlib.Path, sys.argv[1:3])
for p in sorted(src.glob('*.png')):
    a = np.asarray(Image.open(p).convert('RGB'))
    Image.fromarray(255 - a.repeat(2, 0).repeat(2, 1)).save(dst / p.name)
"""


@pytest.fixture
def external(tmp_path):
    script = tmp_path / "external.py"
    script.write_text(EXTERNAL)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{input_dir}} {{output_dir}}"


def test_command_runs_per_folder_and_per_batch(tmp_path, external):
    lq = images(2, 8)
    method = create_method("command", template=external, out_size=16)
    ids = write_folder(tmp_path / "lq", lq)
    method.restore_folder(tmp_path / "lq", tmp_path / "out")
    out = read_image(tmp_path / "out" / f"{ids[1]}.png")
    quantised = (lq[1] * 255).round() / 255
    assert torch.allclose(out, 1 - quantised.repeat_interleave(2, 1).repeat_interleave(2, 2), atol=1e-6)
    restored = method.restore(lq)
    assert restored.shape == (2, 3, 16, 16) and torch.allclose(restored[1], out, atol=1e-6)


def test_command_failures_are_clear(tmp_path):
    (tmp_path / "lq").mkdir()
    write_folder(tmp_path / "lq", images(1, 8))
    py = shlex.quote(sys.executable)
    script = "'import sys; sys.exit(\"boom\")'"
    failing = create_method("command", template=f"{py} -c {script} {{input_dir}} {{output_dir}}")
    with pytest.raises(BenchError, match="status 1: boom"):
        failing.restore_folder(tmp_path / "lq", tmp_path / "out")
    silent = create_method("command", template=f"{py} -c pass {{input_dir}} {{output_dir}}")
    with pytest.raises(BenchError, match="wrote no output for 1 of 1"):
        silent.restore_folder(tmp_path / "lq", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.png"))
