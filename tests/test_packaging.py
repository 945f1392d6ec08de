"""The package layout promised by DESIGN.md: one import root, mapped folders, a light CLI."""

from __future__ import annotations

import re
import subprocess
import sys

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

    assert "datasets" in bench.datasets.__file__ and "methods" in bench.methods.__file__
    assert bench.degradations and bench.reports


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
