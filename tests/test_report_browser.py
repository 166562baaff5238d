"""The report's first screen in a real browser (Debian's chromium driven by Playwright): it leads with its verdict."""

import os
import re

import pandas as pd
import pytest
from results_fixture import add_predictions, write_fixture

from reports import build_report

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")

#: The machine's network is closed: without these chromium waits on connections it cannot make.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 60_000
#: Markdown emphasis that was not rendered: `*word*` or `**some words**`.
EMPHASIS = re.compile(r"\*\*?[^\s*](?:[^*\n]*[^\s*])?\*\*?")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A small report (one workload, three strategies, five seeds, their test predictions) loaded in headless
    chromium at 1400x900."""
    sweep = str(tmp_path_factory.mktemp("sweep"))
    write_fixture(sweep, workloads=("synthetic",), strategies=("dals", "sgdr", "adamw"), tune_trials=3, epochs=4,
                  diverge=None)
    add_predictions(sweep)
    paths = build_report([sweep], os.path.join(sweep, "out"))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=TIMEOUT_MS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"file://{paths.html}", wait_until="load", timeout=TIMEOUT_MS)
            yield paths, page
        finally:
            browser.close()


def test_verdict_is_on_the_first_screen_and_names_the_leader(report):
    """Issue #18: the verdict box starts on the first 900 px screen, is visible and names each leader."""
    paths, page = report
    verdict = page.locator("#verdict")
    box = verdict.bounding_box()
    assert verdict.is_visible() and box is not None
    assert 0 <= box["y"] < VIEWPORT["height"], box
    leaders = pd.read_csv(paths.csv["verdict"]).query("verdict == 'leader'")["strategy"]
    text = verdict.inner_text()
    assert len(leaders) and all(f"Highest mean final test accuracy: {name} " in text for name in leaders), text


def test_the_verdicts_claims_over_seeds_and_test_rows_are_a_table_of_one_line_rows(report):
    """Issue #40: each claim is a row of a table in the verdict box (strategy, behind whom, seeds, over
    seeds, over seeds and test rows, p), which a reader scans, not one paragraph of claims."""
    paths, page = report
    table = page.locator("#verdict table")
    assert table.count() == 1 and table.is_visible()
    assert table.locator("th").all_inner_texts() == ["strategy", "behind", "seeds", "over seeds",
                                                     "over seeds and test rows", "p (seeds and rows)"]
    worse = pd.read_csv(paths.csv["verdict"]).query("verdict == 'worse'")
    claims = [(r.strategy, winner) for r in worse.itertuples() for winner in r.detail.removeprefix("below ").split()]
    rows = table.locator("tbody tr")
    assert claims and rows.count() == len(claims)
    assert sorted(tuple(rows.nth(i).locator("td").all_inner_texts()[:2]) for i in range(len(claims))) == sorted(claims)
    heights = rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    line = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector('#verdict td')).lineHeight)"))
    assert max(heights) < 2 * line, (heights, line)  # every row one line of text at 1400 px


def test_no_literal_emphasis_markup_reaches_the_page(report):
    """Markdown `**bold**` is rendered as bold, so no asterisk pair is left in the text a reader sees."""
    _, page = report
    text = page.inner_text("body")
    assert "Verdict" in text
    assert EMPHASIS.findall(text) == []


def test_every_image_loads(report):
    """The embedded base64 PNGs all decode: at least one image, none broken (naturalWidth 0)."""
    _, page = report
    widths = page.evaluate("Array.from(document.images, img => img.complete ? img.naturalWidth : 0)")
    assert widths and all(w > 0 for w in widths), widths


def test_first_screen_screenshot(report, tmp_path):
    """The first screen can be captured: a 1400x900 PNG."""
    _, page = report
    png = tmp_path / "first_screen.png"
    page.screenshot(path=str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1400, 900)
