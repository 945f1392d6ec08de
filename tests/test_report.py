"""The HTML report: tables with published values, claims, review sections, θ plot, grids, escaping,
exports, and the rendered page in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from fake_run import make_run
from PIL import Image

from bench.errors import BenchError
from bench.experiment import EXPECTED_DIR
from bench.reports.html import render_report

# Claims about the fake run's own methods (its per-image PSNR of "Panini-Net & <co>" is 1 dB above
# GFP-GAN's on every image; its LPIPS is lower, so the LPIPS claim below is the wrong way round).
CLAIMS = """
[[claims]]
table = "table1"
metric = "psnr"
better = "Panini-Net & <co>"
worse = "GFP-GAN"
source = "fake <source>"

[[claims]]
table = "table1"
metric = "lpips"
better = "GFP-GAN"
worse = "Panini-Net & <co>"
source = "fake"
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    expected = root / "expected.toml"
    expected.write_text((EXPECTED_DIR / "paper.toml").read_text(encoding="utf-8") + CLAIMS, encoding="utf-8")
    run = make_run(root, method_names=("GFP-GAN", "Panini-Net & <co>"), image_ids=("a&b", 'c"d', "<e>"),
                   expected_file=expected, skipped=("GPEN",))
    path = render_report(run, reference={"source": "reference <lq>", "psnr": 23.456, "ci": (22.0, 24.0), "n": 10})
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
    assert "mark-better" in html and "mark-reproduced" in html and "mark-missing" in html
    assert "Reproduced value first" in html  # the legend: published values exist
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
    assert "θ (DAFI_5)" in md and "| Panini-Net & <co> (r=16) |" in md  # the θ table
    assert "## Methods not run (weights not found)" in md and "- test set mfr<1>: GPEN" in md
    assert "## parameters" in md
    assert "\\begin{tabular}" in tex and "Panini-Net \\& <co>" in tex and "34.61" in tex


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(BenchError, match="not a run folder"):
        render_report(tmp_path)


def test_claims_section_shows_verdict_difference_and_interval(report):
    _, _, html = report
    section = html[html.index('<h2 id="claims">'):html.index('<h2 id="difficulty">')]
    rows = re.findall(r'<tr><td class="verdict-(\w+)">\w+</td><td>([^<]*)</td>', section)
    verdicts = {text: verdict for verdict, text in rows}
    assert verdicts["Panini-Net &amp; &lt;co&gt; better than GFP-GAN on psnr"] == "supported"
    assert verdicts["GFP-GAN better than Panini-Net &amp; &lt;co&gt; on lpips"] == "contradicted"
    assert verdicts["GPEN better than GFP-GAN on psnr"] == "missing"  # the paper's claims: GPEN was not run
    assert "+1" in section and "[+1, +1]" in section and "paired bootstrap of per-image differences" in section
    assert "fake &lt;source&gt;" in section and "no results of GPEN and GFP-GAN" in section


def test_review_sections(report):
    _, _, html = report
    assert 'alt="metrics by r, mfr&lt;1&gt;"' in html and 'alt="metrics by sigma, mfr&lt;1&gt;"' in html
    assert "noise_seed" not in html  # a seed is no degradation level
    worst = html[html.index('<h2 id="worst">'):html.index('<h2 id="browser">')]
    assert "GFP-GAN on <code>mfr&lt;1&gt;</code> (lowest PSNR ↑)" in worst and "r = 10" in worst
    browser = html[html.index('id="browser-table"'):html.index("</table>", html.index('id="browser-table"'))]
    assert browser.count("<tr>") == 1 + 2 * 3 + 4 * 3  # header + (2 methods + 4 θ conditions) x 3 images
    assert 'data-key="psnr"' in browser and 'data-key="r"' in browser and 'data-key="sigma"' in browser
    assert browser.count("data:image/png;base64,") == 2 * 3  # outputs of the two restoring methods
    assert "Parameters of the loaded models" in html
    difficulty = html[html.index('<h2 id="difficulty">'):html.index('<h2 id="degradation">')]
    assert "test set mfr&lt;1&gt; (GFP-GAN)" in difficulty and "20.10" in difficulty  # the run's bicubic rows
    assert "reference &lt;lq&gt;" in difficulty and "23.46" in difficulty and "[22.00, 24.00]" in difficulty
    assert "preset parameters: sigma 0.2–10; downsample 10–200; jpeg_quality 5–50" in html
    assert "It finished, but 1 method/test-set pair(s) failed" in html


def test_no_legend_without_expected_values_and_the_stop_reason(tmp_path):
    import json

    run = make_run(tmp_path, theta=False)
    info = json.loads((run / "run.json").read_text())
    info.update(status="failed", error="metric 'fid': weights not found <here>")
    (run / "run.json").write_text(json.dumps(info))
    html = render_report(run).read_text(encoding="utf-8")
    assert "Reproduced value first" not in html and "No claims for this run" in html
    assert "It stopped because: metric &#39;fid&#39;: weights not found &lt;here&gt;" in html


def test_reference_input_difficulty(tmp_path):
    from bench.commands.report import reference_difficulty

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    for k, image in enumerate(gt):
        for kind, data in (("gt", image), ("lq", image[::4, ::4])):
            (tmp_path / kind).mkdir(exist_ok=True)
            Image.fromarray(data).save(tmp_path / kind / f"{k}.png")
    reference = reference_difficulty(str(tmp_path / "lq"), str(tmp_path / "gt"))
    mses = [np.mean((np.asarray(Image.fromarray(g[::4, ::4]).resize((32, 32), Image.Resampling.BICUBIC), float)
                     - g) ** 2) for g in gt]
    assert reference["n"] == 2 and reference["psnr"] == pytest.approx(np.mean([10 * np.log10(255**2 / m)
                                                                               for m in mses]), abs=1e-6)


@pytest.mark.browser
def test_review_sections_in_headless_chromium(report, tmp_path):
    """The report opened from a local file: claims and plots present, every image decoded, no console
    messages, and the per-image browser sorted by a link (#sort=-psnr) in the browser itself."""
    _, path, _ = report
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    if chromium is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    result = subprocess.run([chromium, *flags, "--dump-dom", path.resolve().as_uri() + "#sort=-psnr"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-broken-images="0"' in dom and int(re.search(r'data-images="(\d+)"', dom).group(1)) > 40
    assert not [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert 'data-sorted-by="psnr desc"' in dom and 'class="sorted-desc"' in dom
    body = dom[dom.index('id="browser-table"'):].split("</tbody>")[0].split("<tbody>")[1]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in body.split("<tr>")[1:]]
    psnr = [float(row[4]) for row in rows if row[4]]  # columns: test set, method, image, output, PSNR, ...
    assert rows[0][1] == "Panini-Net &amp; &lt;co&gt;" and psnr == sorted(psnr, reverse=True) and len(psnr) == 6
    assert "verdict-supported" in dom and "verdict-contradicted" in dom and 'alt="metrics by r' in dom
