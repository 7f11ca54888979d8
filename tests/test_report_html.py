"""report.html: self-contained, rebuilt by `navigator report DIR` from the study storage, and rendered by a
real headless browser (Debian's chromium through its chromedriver): no console errors, every plot drawn,
a screenshot that is not blank.

The browser test skips on a machine without chromium + chromedriver, unless NAVIGATOR_REQUIRE_CHROMIUM=1
(set by .ci/setup.d/20-chromium.sh), where a missing browser fails it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import navigator
from navigator.report.plots import importances
from tests.conftest import run_cli

PLOTS = ("history", "per_path", "throughput_latency", "importance", "accuracy")


@pytest.fixture(scope="module")
def run_dir(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    navigator.optimize(str(models["mlp.pt2"]), budget="20s", batch_size=8, out=out, progress=False,
                       window_s=0.05)
    return out


def test_html_is_self_contained_and_complete(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()
    # No resource from the network: no external script, stylesheet or image.
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", text)
    assert not re.search(r"<link[^>]*href=", text)
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js inlined
    for name in PLOTS:
        assert f'id="plot-{name}"' in text
    report = json.loads((run_dir / "report.json").read_text())
    for o in report["outcomes"]:
        assert f'<td>{o["config"]["path"]}</td>' in text
    winner = report["winner"]["config"]["path"]
    assert f'<div class="big">{winner}</div>' in text and "tritonserver --model-repository" in text


def test_report_command_rebuilds_from_the_study(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for name in ("report.json", "report.md", "report.html"):
        (copy / name).unlink()
    proc = run_cli("report", str(copy))
    assert proc.returncode == 0, proc.stderr
    old, new = (json.loads((d / "report.json").read_text()) for d in (run_dir, copy))
    for key in ("outcomes", "winner", "finalists", "comparisons", "speedup", "settings", "environment"):
        assert new[key] == old[key], key
    assert new["report"] == str(copy / "report.json")
    assert (copy / "report.md").read_text().startswith("# navigator report:")
    assert 'id="plot-history"' in (copy / "report.html").read_text()


def test_report_command_bad_directory(tmp_path: Path) -> None:
    proc = run_cli("report", str(tmp_path))
    assert proc.returncode == 2 and "no navigator study" in proc.stderr and "Traceback" not in proc.stderr


def _driver() -> object:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("NAVIGATOR_REQUIRE_CHROMIUM") == "1":
            pytest.fail("NAVIGATOR_REQUIRE_CHROMIUM=1 but chromium / chromedriver are not installed")
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def test_browser_renders_every_plot(run_dir: Path) -> None:
    from PIL import Image, ImageStat

    browser = _driver()
    try:
        browser.get((run_dir / "report.html").as_uri())  # type: ignore[attr-defined]
        drawn = browser.execute_script(  # type: ignore[attr-defined]
            "return arguments[0].map(n => { const d = document.getElementById('plot-' + n);"
            " return d ? d.querySelectorAll('.main-svg .trace .point, .main-svg .trace path.point,"
            " .main-svg .scatterlayer .trace path, .main-svg .barlayer .trace .point').length : -1; });",
            list(PLOTS))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
        rows = browser.execute_script(  # type: ignore[attr-defined]
            "return document.querySelectorAll('#trials-table tbody tr').length")
        annotations = browser.execute_script(  # type: ignore[attr-defined]
            "return document.querySelector('#plot-importance').textContent")
        png = browser.get_screenshot_as_png()  # type: ignore[attr-defined]
    finally:
        browser.quit()  # type: ignore[attr-defined]
    assert not errors, errors
    counts = dict(zip(PLOTS, drawn))
    if not importances(navigator.load_result(run_dir)):  # few valid trials on a busy machine: says so
        assert "too few valid trials" in annotations
        counts.pop("importance")
    assert all(n > 0 for n in counts.values()), counts
    report = json.loads((run_dir / "report.json").read_text())
    assert rows == len(report["outcomes"])
    image = Image.open(io.BytesIO(png)).convert("L")
    stat = ImageStat.Stat(image)
    colours = len(image.getcolors(maxcolors=1 << 16) or range(1 << 16))
    assert stat.stddev[0] > 10 and colours > 50, (stat.stddev, colours)  # not a blank page
