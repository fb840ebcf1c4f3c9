"""The history page at a glance, in headless Chromium (Debian's, driven by Playwright) at laptop and desktop widths.

The page comes from the plugin's app (the package's ``ui`` fixture: a real metadata DB) and is loaded into the
browser as it is served. It must hold from a laptop screen up: no horizontal overflow, no cell whose value is cut
or whose word wraps mid-word, chart labels that tell runs apart (three runs started in the same minute), and
failed and degraded syncs marked in the table and the chart. The screenshots are saved for a person to look at
(``$USERATTRS_UI_SCREENSHOTS``, else a temporary directory; the path is printed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import UiWorld, sample_report, seed_history

LAYOUT_DAG = "ui_layout_dag_with_a_rather_long_name_for_its_column"
WIDTHS = (1280, 1400, 1920)
START = datetime(2026, 12, 6, 2, 15, 5, tzinfo=UTC)

CHECKS = r"""
() => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) problems.push(`page scrolls sideways: ${doc.scrollWidth} > ${innerWidth}`);
  const wrap = document.querySelector(".table-wrap");
  if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(`table ${wrap.scrollWidth} > ${wrap.clientWidth}`);
  // Every text must show whole: a value may wrap between words, never inside one, and is never cut, except an
  // id in a .clip line (cut with an ellipsis on purpose, shown whole on hover).
  for (const cell of document.querySelectorAll("#syncs th, #syncs td")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const box = node.parentElement.closest(".clip, .fig, td, th");
      if (box.classList.contains("clip")) continue;
      const style = getComputedStyle(box);
      const inner = box.getBoundingClientRect();
      const left = inner.left + parseFloat(style.paddingLeft) - 1;
      const right = inner.right - parseFloat(style.paddingRight) + 1;
      for (const m of node.data.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter(r => r.width > 0);
        if (new Set(rects.map(r => Math.round(r.top))).size > 1) problems.push(`word wraps mid-word: ${m[0]}`);
        if (rects.some(r => r.left < left || r.right > right)) problems.push(`cut: ${m[0]} in ${box.textContent}`);
      }
    }
  }
  const labels = [...document.querySelectorAll("#sync-chart .x-label")];
  const boxes = labels.map(l => l.getBoundingClientRect());
  for (let i = 1; i < boxes.length; i++) {
    if (boxes[i].left < boxes[i - 1].right) problems.push(`chart labels overlap: ${labels[i].textContent}`);
  }
  return problems;
}
"""


def find_chromium() -> str | None:
    import shutil

    candidates = [os.environ.get("USERATTRS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _unavailable(problem: str) -> None:
    if os.environ.get("USERATTRS_REQUIRE_E2E") == "1":
        pytest.fail(f"USERATTRS_REQUIRE_E2E=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc})")
    chromium = find_chromium()
    if chromium is None:
        _unavailable("no Chromium (/usr/bin/chromium, $USERATTRS_CHROMIUM): run bash scripts/install-chromium.sh")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("USERATTRS_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {folder}")
    return folder


def _report(index: int, **changes: Any) -> dict[str, Any]:
    return {**sample_report("dx", "dx_default", index), **changes}


@pytest.fixture(scope="module")
def layout(ui: UiWorld) -> dict[str, Any]:
    """Runs that used to break the page: three started in the same minute, a failed one with every quota figure
    and seven-digit counts, a degraded one, a long DAG id, long run ids, a mapped run of four chunks."""
    from airflow.utils.session import create_session

    with create_session() as session:
        same_minute = [
            seed_history(session, [LAYOUT_DAG], runs=1, chunks=1, start=START + timedelta(seconds=20 * i))[0]
            for i in range(3)
        ]
        failed = seed_history(
            session,
            [LAYOUT_DAG],
            runs=1,
            chunks=1,
            start=START + timedelta(minutes=7),
            state="failed",
            task_id="push_attributes_to_the_crm",
            report_for=lambda v, c, i: _report(
                i,
                total=1_234_567,
                succeeded=1_000_000,
                failed=234_567,
                retryable_users=12_345,
                requests_sent=1_250_000,
                duration_seconds=12_345.6,
                deferrals=12,
                waited_seconds=3_456.7,
                throttled_requests=12_345,
                quota_used=0.873,
            ),
        )[0]
        degraded = seed_history(
            session,
            [LAYOUT_DAG],
            runs=1,
            chunks=4,
            start=START + timedelta(minutes=12),
            report_for=lambda v, c, i: _report(
                i,
                deferrals=1,
                waited_seconds=61.0,
                throttled_requests=0,
                degraded=[
                    {"rule": "slow", "message": "took 3,700 s, longer than degraded_after 3,600 s"},
                    {"rule": "postponed", "message": "the vendor's quota postponed users: deferred 1 time"},
                ]
                if i % 4 == 1
                else [],
            ),
        )[0]
    return {"same_minute": same_minute, "failed": failed, "degraded": degraded}


def _load(browser: Any, ui: UiWorld, url: str, width: int) -> Any:
    response = ui.get(url)
    assert response.status_code == 200, response.text
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_content(response.text, wait_until="load")
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_history_page_holds_at_every_width(browser, ui: UiWorld, layout, shots: Path, width: int) -> None:
    for name, url in (("all", "/userattrs/syncs?limit=100"), ("dag", f"/userattrs/syncs?dag_id={LAYOUT_DAG}")):
        page = _load(browser, ui, url, width)
        try:
            page.screenshot(path=str(shots / f"syncs-{name}-{width}.png"), full_page=True)
            problems = page.evaluate(CHECKS)
            assert not problems, f"{name} at {width} px:\n" + "\n".join(problems)
        finally:
            page.close()


def test_failed_and_degraded_syncs_stand_out_and_runs_of_one_minute_are_told_apart(
    browser, ui: UiWorld, layout
) -> None:
    page = _load(browser, ui, f"/userattrs/syncs?dag_id={LAYOUT_DAG}", 1280)
    try:
        labels = page.locator("#sync-chart .x-label").all_text_contents()
        assert len(labels) == len(set(labels)) == 5, labels
        assert {"02:15:0512-06", "02:15:2512-06", "02:15:4512-06"} <= set(labels), "same minute: seconds shown"
        assert page.locator("#sync-chart .mark-failed").count() == 2  # the run's, and the legend's
        assert page.locator("#sync-chart .mark-degraded").count() == 2
        assert page.locator("#sync-chart .band-failed").count() == 1
        assert page.locator("#sync-chart .band-degraded").count() == 1
        failed_row = page.locator("tr.row-failed")
        assert failed_row.count() == 1 and "push_attributes_to_the_crm" in failed_row.inner_text()
        degraded_row = page.locator("tr.row-degraded")
        assert degraded_row.count() == 1 and "push_chunk[1]" in degraded_row.inner_text()
        badge = degraded_row.locator(".state-degraded")
        assert badge.inner_text() == "degraded" and "postponed users" in str(badge.get_attribute("title"))
        assert page.locator("tr.row-failed .fig").all_text_contents() == [
            "12 deferrals",
            "3,456.7 s waited",
            "12,345 \u00d7 429",
            "87.3 % of quota",
        ]
    finally:
        page.close()


def test_the_report_page_of_a_degraded_sync_says_why(browser, ui: UiWorld, layout, shots: Path) -> None:
    from urllib.parse import quote

    run_id = layout["degraded"].run_id
    url = f"/userattrs/report/{LAYOUT_DAG}/{quote(run_id, safe='')}/push_chunk?map_index=1"
    page = _load(browser, ui, url, 1280)
    try:
        page.screenshot(path=str(shots / "report-degraded-1280.png"), full_page=True)
        banner = page.locator("#degraded").inner_text()
        assert "Degraded" in banner and "longer than degraded_after" in banner and "postponed users" in banner
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    finally:
        page.close()
