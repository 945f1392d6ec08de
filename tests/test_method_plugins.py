"""Third-party methods through the `bench.methods` entry-point group: a real pip-installed plugin,
a plugin that fails to import (listed as broken, the others keep working), and `bench methods`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The example plugin pip-installed into a private folder, next to a hand-made broken plugin."""
    tmp = tmp_path_factory.mktemp("plugins")
    source = tmp / "src"
    shutil.copytree(REPO / "tests" / "plugins" / "example_plugin", source)  # pip builds in-tree
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )
    broken = site / "bench_broken_plugin-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-broken-plugin\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[bench.methods]\nbroken = bench_no_such_module:ENTRIES\n")
    return site


def run_python(site, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)


def test_installed_plugin_is_listed_and_broken_one_reported(plugin_site):
    result = run_python(plugin_site, """
        import sys
        from bench.cli import main
        code = main(["methods", "--json"])
        heavy = [m for m in ("torch", "cv2", "lpips", "matplotlib") if m in sys.modules]
        print("HEAVY=" + ",".join(heavy))
        sys.exit(code)
    """)
    assert result.returncode == 0, result.stderr
    listing, heavy = result.stdout.rsplit("HEAVY=", 1)
    data = json.loads(listing)
    names = [m["name"] for m in data["methods"]]
    assert "example-sharpen" in names and "gfpgan-v1.3" in names and "bicubic" in names
    assert [b["name"] for b in data["broken_plugins"]] == ["broken"]
    assert "bench_no_such_module" in data["broken_plugins"][0]["error"]
    assert heavy.strip() == "", f"listing methods imported {heavy.strip()}"


def test_plugin_runs_through_the_registry_next_to_a_broken_one(plugin_site):
    result = run_python(plugin_site, """
        import torch
        from bench.errors import BenchError
        from bench.methods import create_method
        method = create_method("example-sharpen", weights={"amount": torch.tensor(2.0)})
        lq = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        out = method.restore(lq)
        flat = torch.full((1, 3, 8, 8), 0.25)
        assert torch.allclose(method.restore(flat), flat)  # unsharp masking keeps flat images
        assert out.shape == lq.shape and 0 <= out.min() and out.max() <= 1
        assert (out - lq).abs().max() > 0.05 and method.protocol == {"amount": 2.0}
        try:
            create_method("broken")
        except BenchError as exc:
            print("ERROR:", exc)
        print(type(create_method("bicubic", out_size=8)).__name__, "OK")
    """)
    assert result.returncode == 0, result.stderr
    assert "ERROR: method plugin 'broken'" in result.stdout and "bench_no_such_module" in result.stdout
    assert "Method OK" in result.stdout


def test_bench_methods_table_lists_builtins_and_broken_plugins(plugin_site):
    env = dict(os.environ, PYTHONPATH=str(plugin_site))
    result = subprocess.run([sys.executable, "-m", "bench", "methods"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "task", "in", "out"]
    row = next(line for line in lines if line.startswith("glean-ffhq-16x"))
    assert row.split()[1:4] == ["sr16", "64", "1024"] and "Apache-2.0" in row
    assert any(line.startswith("BROKEN plugin broken") for line in lines)
