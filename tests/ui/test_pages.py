"""The two HTML views: what they show, that untrusted text is escaped, and that nothing is fetched from elsewhere."""

from __future__ import annotations

import re
from urllib.parse import quote

from .conftest import SYNC_DAG, UiWorld


def report_page(ui: UiWorld, key: tuple[str, str, str, int], who: str = "admin", **params: int) -> str:
    dag_id, run_id, task_id, map_index = key
    parts = "/".join(quote(p, safe="") for p in (dag_id, run_id, task_id))
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    response = ui.get(f"/userattrs/report/{parts}?map_index={map_index}{extra}", who)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return str(response.text)


def assert_self_contained(html: str) -> None:
    """No CDN, font or script from another origin: every src/href is relative or same-origin."""
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not re.match(r"^(https?:)?//", url), f"external resource {url}"
    assert "@import" not in html and "@font-face" not in html


def test_syncs_page_has_the_chart_the_table_and_run_links(ui: UiWorld) -> None:
    response = ui.get(f"/userattrs/syncs?dag_id={SYNC_DAG}")
    assert response.status_code == 200
    html = response.text
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'class="bar-delivered"' in html
    assert 'class="bar-failed"' in html
    assert '<table id="syncs" class="syncs">' in html and html.count('class="report-link"') == 8
    assert f'href="/dags/{SYNC_DAG}/runs/' in html and 'target="_top"' in html
    assert "of 8" in html
    assert_self_contained(html)


def test_syncs_page_filters_through_the_form(ui: UiWorld) -> None:
    html = ui.get(f"/userattrs/syncs?dag_id={SYNC_DAG}&state=failed").text
    assert html.count('class="report-link"') == 1 and "rejecting" in html
    assert '<option value="failed" selected>' in html
    assert "2 deferrals" in html and "3.5 s waited" in html, "quota figures shown when a report has them"


def test_report_page_shows_counts_grouped_reasons_and_escapes_untrusted_text(ui: UiWorld) -> None:
    html = report_page(ui, ui.rejected_chunk)
    assert "Failures by reason" in html and '<table id="reasons">' in html
    assert "DX rejected the request (HTTP 422): user_not_found" in html
    assert re.search(r"<td class=\"n\">7</td><td class=\"n\">7</td><td>rejected</td>", html)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'id="download"' in html and "deferrals" in html and "waited_seconds" in html
    assert "Replay failures" in html
    assert_self_contained(html)


def test_report_page_pages_the_failure_lines(ui: UiWorld) -> None:
    html = report_page(ui, ui.rejected_chunk, limit=3, offset=3)
    assert "lines 4-6 of 10" in html
    assert "ann3@example.invalid" in html and "ann2@example.invalid" not in html
    assert "offset=0&amp;limit=3" in html and "offset=6&amp;limit=3" in html


def test_replay_button_is_enabled_only_where_it_can_work(ui: UiWorld) -> None:
    enabled = report_page(ui, ui.replay_chunk, who="user")
    assert re.search(r'<button class="primary" id="replay" [^>]*>Replay failures', enabled)
    assert not re.search(r'id="replay" [^>]*disabled', enabled)
    viewer = report_page(ui, ui.replay_chunk, who="viewer")
    assert re.search(r'id="replay" [^>]*disabled', viewer) and "you may not trigger this DAG" in viewer
    no_param = report_page(ui, ui.rejected_chunk)
    assert "this DAG has no replay_from param" in no_param


def test_pages_answer_errors_in_html(ui: UiWorld) -> None:
    response = ui.get("/userattrs/syncs", who=None)
    assert response.status_code == 401 and response.headers["content-type"].startswith("text/html")
    assert "Sign in to Airflow" in response.text
    missing = ui.get("/userattrs/report/x/y/z")
    assert missing.status_code == 404 and "No sync report" in missing.text
