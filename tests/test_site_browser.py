"""The leaderboard website in a real browser: Debian's headless Chromium driven by Selenium
through the OS chromedriver (no browser download). The site is generated from the committed
records (plus one record scored under a second protocol, so that the protocol filter has
something to hide); the test sorts a column, filters, plays the fixed clips, follows a record
link, and fails on any console message of level SEVERE or any broken link.

CI installs ``chromium`` and ``chromium-driver`` (see ``.ci/run``); elsewhere the test skips
with the reason when either is missing."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_site import RECORDS, broken_links, html_site, known_records
from vpbench.leaderboard.html import reproduce_command
from vpbench.records import read_record

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver); CI installs them",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra: pip install -e '.[dev]')")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    records = known_records(root / "records")
    # one more record: copy-last's, scored under the `standard` protocol (same test set)
    src = records / "glyphs" / "copy-last-glyphs-cpu"
    data = json.loads((src / "record.json").read_text(encoding="utf-8"))
    data.update(run_id="copy-last-standard", metrics={"standard": data["metrics"]["openstl"]}, baselines={})
    shutil.copytree(src, records / "glyphs" / "copy-last-standard")
    (records / "glyphs" / "copy-last-standard" / "record.json").write_text(json.dumps(data), encoding="utf-8")
    return html_site(records, root / "site")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="vpbench-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _screenshot(driver: Any, path: Path) -> None:
    """The whole page at 1280 CSS pixels wide, in 256 colours (small enough to commit)."""
    from PIL import Image

    size = driver.get_window_size()
    driver.set_window_size(1280, driver.execute_script("return document.body.scrollHeight") + 40)
    full = path.with_suffix(".full.png")
    driver.save_screenshot(str(full))
    driver.set_window_size(size["width"], size["height"])
    image = Image.open(full).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)
    full.unlink()


def errors(driver: Any) -> list[str]:
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def column(driver: Any, table: Any, heading: str) -> list[str]:
    heads = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    k = next(i for i, h in enumerate(heads) if h.startswith(heading))
    return [row.find_elements(By.TAG_NAME, "td")[k].get_attribute("data-sort") for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def test_the_site_in_a_real_browser(site: Path, browser: Any) -> None:
    assert broken_links(site) == []
    browser.get((site / "index.html").as_uri())
    assert browser.title == "vpbench leaderboards"
    browser.find_element(By.CSS_SELECTOR, 'a[href="glyphs-A.html"]').click()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("/glyphs-A.html"))
    assert errors(browser) == []
    images = browser.execute_script("return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
    assert images and all(ok for _, ok in images), images

    # sort by PSNR: ascending, then descending (missing values last)
    table = browser.find_element(By.CSS_SELECTOR, 'section.track[data-protocol="openstl"] table')
    button = table.find_element(By.XPATH, ".//thead//th[starts-with(normalize-space(.), 'PSNR')]//button")
    button.click()
    values = [float(v) for v in column(browser, table, "PSNR") if v]
    assert values == sorted(values) and len(values) == 9  # the standard-only record has no row in this table
    button.click()
    values = [float(v) for v in column(browser, table, "PSNR") if v]
    assert values == sorted(values, reverse=True)
    assert table.find_element(By.XPATH, ".//thead//th[starts-with(normalize-space(.), 'PSNR')]").get_attribute("aria-sort") == "descending"

    # filter: by protocol (a whole table), then by model family (rows)
    openstl = browser.find_element(By.CSS_SELECTOR, 'section.track[data-protocol="openstl"]')
    standard = browser.find_element(By.CSS_SELECTOR, 'section.track[data-protocol="standard"]')
    assert openstl.is_displayed() and standard.is_displayed()
    Select(browser.find_element(By.NAME, "protocol")).select_by_value("standard")
    WebDriverWait(browser, 10).until(lambda d: not openstl.is_displayed())
    assert standard.is_displayed()
    Select(browser.find_element(By.NAME, "protocol")).select_by_value("")
    Select(browser.find_element(By.NAME, "family")).select_by_value("shrvq")
    WebDriverWait(browser, 10).until(lambda d: all(
        r.is_displayed() == (r.get_attribute("data-family") == "shrvq") for r in openstl.find_elements(By.CSS_SELECTOR, "tbody tr")
    ))
    assert sum(r.is_displayed() for r in openstl.find_elements(By.CSS_SELECTOR, "tbody tr")) == 4
    Select(browser.find_element(By.NAME, "family")).select_by_value("")

    # play the fixed clips: every strip moves on one clock, frame by frame
    clips = browser.find_element(By.CSS_SELECTOR, ".clips")
    strips = clips.find_elements(By.CSS_SELECTOR, ".strip img")
    assert len(strips) == 4 and clips.get_attribute("data-frame") == "0"
    browser.find_element(By.XPATH, "//div[@class='controls']/button[text()='Play']").click()
    WebDriverWait(browser, 30).until(lambda d: int(clips.get_attribute("data-frame")) >= 12)
    browser.find_element(By.XPATH, "//div[@class='controls']/button[text()='Pause']").click()
    frame = int(clips.get_attribute("data-frame"))
    shifts = {s.value_of_css_property("transform") for s in strips}
    assert len(shifts) == 1 and shifts != {"none"}  # all clips show the same frame
    output = browser.find_element(By.CSS_SELECTOR, ".controls output").text
    assert output.startswith(f"frame {frame + 1} of 20 (predicted +")
    assert errors(browser) == []

    # follow a record link: its page holds the command stored in the record
    browser.find_element(By.LINK_TEXT, "demo").click()
    WebDriverWait(browser, 30).until(lambda d: "/runs/demo-" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Run demo"
    demo = read_record(RECORDS / "glyphs" / "demo" / "record.json")
    assert browser.find_element(By.CSS_SELECTOR, "pre code").text == reproduce_command(demo.argv)
    browser.find_element(By.LINK_TEXT, "glyphs").click()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("/glyphs-A.html"))
    assert errors(browser) == []


def test_the_pages_read_without_javascript(site: Path, browser: Any) -> None:
    """The same page with the script blocked: tables, every frame of the clips, no controls."""
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get((site / "glyphs-A.html").as_uri())
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("class") in (None, "")  # the script did not run
        rows = browser.find_elements(By.CSS_SELECTOR, 'section.track[data-protocol="openstl"] tbody tr')
        assert len(rows) == 9 and all(r.is_displayed() for r in rows)  # the standard-only record has no row of "—" here
        assert not browser.find_element(By.CSS_SELECTOR, ".controls").is_displayed()
        assert not browser.find_element(By.CSS_SELECTOR, "form.filters").is_displayed()
        player = browser.find_element(By.CSS_SELECTOR, "figure.player")
        cell = int(player.get_attribute("data-cell"))
        image = player.find_element(By.CSS_SELECTOR, ".strip img")
        assert image.size["height"] == int(image.get_attribute("height")) > 19 * cell  # all 20 frames, top to bottom
        assert player.find_element(By.CSS_SELECTOR, ".strip").size["height"] > 3 * cell  # not cropped to one frame
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    assert errors(browser) == []


def test_screenshot_of_the_glyphs_page(browser: Any, tmp_path: Path) -> None:
    """How docs/leaderboard-site-glyphs.png is made: VPBENCH_SCREENSHOT=docs/leaderboard-site-glyphs.png
    pytest tests/test_site_browser.py -k screenshot (the committed records only, at predicted frame +5)."""
    target = os.environ.get("VPBENCH_SCREENSHOT")
    if not target:
        pytest.skip("set VPBENCH_SCREENSHOT=PATH.png to write a screenshot of the glyphs page")
    site = html_site(known_records(tmp_path / "records"), tmp_path / "site")
    browser.get((site / "glyphs-A.html").as_uri())
    browser.execute_script("var s = document.querySelector('.controls input'); s.value = '14'; s.dispatchEvent(new Event('input'));")
    assert browser.find_element(By.CSS_SELECTOR, ".clips").get_attribute("data-frame") == "14"
    _screenshot(browser, Path(target))
    assert errors(browser) == []
