"""The package layout promised by DESIGN.md: one import root, mapped folders, a light CLI."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import tomllib

from conftest import REPO


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"add these packages to [tool.setuptools] packages: {missing}"


def test_mapped_folders_import_under_bench():
    import bench.datasets
    import bench.degradations
    import bench.methods
    import bench.reports

    # each mapped name must be the repository's folder (editable or installed), with its own modules
    own_module = {bench.datasets: "testset", bench.degradations: "presets", bench.methods: "registry",
                  bench.reports: "html"}
    for package, module in own_module.items():
        folder = Path(package.__file__).parent
        assert folder.name == package.__name__.split(".")[1], f"{package.__name__} imported from {folder}"
        assert importlib.util.find_spec(f"{package.__name__}.{module}") is not None, f"{folder} lacks {module}"


def test_cli_imports_nothing_heavy():
    code = (
        "import sys, bench.cli; bench.cli.build_parser(); "
        "heavy = [m for m in ('torch', 'lpips', 'pytorch_fid', 'cleanfid', 'matplotlib', 'cv2') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the CLI imported heavy modules at start-up: {out}"


def test_python_dash_m_bench_help():
    result = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "testset" in result.stdout


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c).strip()
    assert test_command in ci, "the README's test command must be what .ci/run runs"


def test_tests_run_with_one_thread():
    """conftest.py sets OMP_NUM_THREADS before torch loads; a fixture would be too late for torch."""
    import torch

    assert torch.get_num_threads() == 1
