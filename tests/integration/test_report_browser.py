"""report.html in a real browser: loads cleanly, requests nothing, shows its maps and charts.

Runs headless Chromium through Selenium. A full-page screenshot is kept in the
test's tmp_path and, when ``CITYBASELINE_SCREENSHOT_DIR`` is set, copied there
for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from baseline.publish import write_report, write_report_pdf

CHROMIUM = os.environ.get("CITYBASELINE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CITYBASELINE_CHROMEDRIVER", "/usr/bin/chromedriver")
FIGURE_IDS = ("fig-buildings-map", "fig-vehicles-map", "fig-height-hist", "fig-h3-share")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason=f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER}"),
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A full report and a degraded one (optional columns missing), written once."""
    from tests.conftest import make_publish_sample

    sample = make_publish_sample()
    full = write_report(tmp_path_factory.mktemp("full"), buildings=sample.buildings, vehicles=sample.vehicles,
                        indicators_city=sample.indicators_city, indicators_h3=sample.indicators_h3,
                        roads=sample.roads, aoi=sample.aoi, context=sample.context)
    degraded = write_report(tmp_path_factory.mktemp("degraded"),
                            buildings=sample.buildings.drop(columns="height_m"),
                            vehicles=sample.vehicles.drop(columns="on_road"),
                            indicators_city=sample.indicators_city[["city", "geometry"]],
                            indicators_h3=sample.indicators_h3[["h3_cell", "geometry"]], context={})
    return {"full": full, "degraded": degraded}


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-extensions", "--hide-scrollbars", "--window-size=1280,900",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def _load(driver, path: Path) -> tuple[list[dict], list[str]]:
    """Open ``path``; return the console entries and every URL the page asked for.

    Requests of the browser's own pages (``chrome://``, e.g. a new-tab page still
    loading) are not the report's and are left out by their document URL.
    """
    driver.get_log("browser")
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")
    console = driver.get_log("browser")
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            url = params["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:", "ftp:")) or params.get("documentURL") == path.as_uri():
                requested.append(url)
    return console, requested


@pytest.mark.parametrize("name", ["full", "degraded"])
def test_loads_without_console_errors_or_network(driver, reports, name):
    console, requested = _load(driver, reports[name])
    assert [e for e in console if e["level"] == "SEVERE"] == []
    page = reports[name].as_uri()
    assert page in requested, "the performance log did not record the page load"
    outside = [u for u in requested if u != page and not u.startswith("data:")]
    assert outside == []
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
    assert resources == []


def test_maps_and_charts_are_shown(driver, reports, tmp_path):
    _load(driver, reports["full"])
    for fig_id in FIGURE_IDS:
        info = driver.execute_script(
            """const f = document.getElementById(arguments[0]);
               if (!f) return null;
               const r = f.getBoundingClientRect();
               const img = f.querySelector('img, svg');
               return {w: r.width, h: r.height, tag: img && img.tagName.toLowerCase(),
                       src: img && img.getAttribute('src') ? img.getAttribute('src').slice(0, 26) : '',
                       ok: !!img && (img.tagName !== 'IMG' || (img.complete && img.naturalWidth > 0)),
                       iw: img ? img.getBoundingClientRect().width : 0};""",
            fig_id)
        assert info is not None, f"no element #{fig_id}"
        assert info["w"] > 200 and info["h"] > 150, (fig_id, info)
        assert info["tag"] in {"img", "svg"} and info["ok"], (fig_id, info)
        assert info["src"].startswith("data:image/svg+xml") or info["tag"] == "svg"
        assert info["iw"] > 200, (fig_id, info)
    rows = driver.execute_script("return document.querySelectorAll('#tbl-indicators tbody tr').length")
    assert rows >= 20
    text = driver.find_element("tag name", "body").text
    for heading in ("Summary", "Method and uncertainty", "Data quality"):
        assert heading in text
    assert "withheld (<5 vehicles)" in text
    _screenshot(driver, tmp_path / "report-full.png")


def test_degraded_report_says_what_is_not_measurable(driver, reports, tmp_path):
    _load(driver, reports["degraded"])
    for fig_id in FIGURE_IDS:
        figure = driver.find_element("id", fig_id)
        assert "not measurable" in figure.text, fig_id
        assert figure.size["height"] > 100
    _screenshot(driver, tmp_path / "report-degraded.png")


def test_prints_to_pdf(reports):
    pdf = write_report_pdf(reports["full"], chromium=CHROMIUM)
    assert pdf is not None and pdf.name == "report.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 3  # several A4 pages


def _screenshot(driver, path: Path) -> None:
    """Full-page PNG: the window is grown to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height), 12000))
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 50_000
    target = os.environ.get("CITYBASELINE_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)
    driver.set_window_size(1280, 900)
