"""The HTML report: tables with published values, θ plot, grids, escaping, exports."""

from __future__ import annotations

import re

import pytest
from fake_run import make_run

from bench.errors import BenchError
from bench.experiment import EXPECTED_DIR
from bench.reports.html import render_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    run = make_run(root, method_names=("GFP-GAN", "Panini-Net & <co>"), image_ids=("a&b", 'c"d', "<e>"),
                   expected_file=EXPECTED_DIR / "paper.toml")
    path = render_report(run)
    return run, path, path.read_text(encoding="utf-8")


def test_special_characters_in_names_are_escaped(report):
    _, _, html = report
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<co>" not in html and "Panini-Net &amp; &lt;co&gt;" in html
    assert "<e>" not in html and "&lt;e&gt;" in html
    assert "Broken &lt;b&gt;method&lt;/b&gt;" in html
    assert 'href="../outputs/GFP-GAN/' in html
    assert "a%26b.png" in html and "%3Ce%3E.png" in html and "c%22d.png" in html  # links are URL-quoted
    assert len(re.findall(r"<script>", html)) == 1  # only the report's own self-check


def test_tables_show_published_and_reproduced_values(report):
    _, _, html = report
    assert "paper 17.22" in html and "paper 34.61" in html  # GFP-GAN, Table 1
    assert "20.10" in html and "Δ +2.88" in html  # reproduced PSNR and difference
    assert 'class="best"' in html  # best value per column highlighted
    assert "mark-better" in html and "mark-ok" in html and "mark-missing" in html
    assert html.count("data:image/png;base64,") >= 3 * 4 * 3  # thumbnails + 2 crops for every grid cell


def test_theta_plot_dissection_distributions_provenance_and_failures(report):
    _, _, html = report
    assert 'alt="theta versus r plot"' in html
    assert "Dissection (Fig. 7)" in html and "Y_GPB" in html and "θ = 0.450" in html
    assert "psnr per image" in html and "lpips per image" in html
    assert "0" * 40 in html  # git commit
    assert "weights not found: how to get them" in html and "bench weights fetch gfpgan-v1.3" in html
    assert "RuntimeError: boom" in html


def test_markdown_and_latex_exports(report):
    run, path, _ = report
    md = (path.parent / "tables.md").read_text(encoding="utf-8")
    tex = (path.parent / "tables.tex").read_text(encoding="utf-8")
    assert "| GFP-GAN | 17.22 | 20.10 ▲ | +2.88 |" in md
    assert "\\begin{tabular}" in tex and "Panini-Net \\& <co>" in tex and "34.61" in tex


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(BenchError, match="not a run folder"):
        render_report(tmp_path)
