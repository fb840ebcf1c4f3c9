"""No API description for anonymous callers; every numeric parameter bounded; pages answer bad input in HTML."""

from __future__ import annotations

import pytest

from airflow_provider_userattrs.ui.app import MAX_INT

from .conftest import UiWorld
from .test_api import path

HUGE = "100000000000000000000"


@pytest.mark.parametrize("url", ["/userattrs/openapi.json", "/userattrs/docs", "/userattrs/redoc"])
@pytest.mark.parametrize("who", [None, "admin"])
def test_no_openapi_document_or_docs_page_is_served(ui: UiWorld, url: str, who: str | None) -> None:
    response = ui.get(url, who)
    assert response.status_code == 404
    assert "openapi" not in response.text and "/api/replay" not in response.text


def _url(ui: UiWorld, kind: str, query: str) -> str:
    """``kind``'s URL with ``query`` (which may replace the report's ``map_index=0``)."""
    if kind in ("api_syncs", "page_syncs"):
        return f"/userattrs{'/api' if kind == 'api_syncs' else ''}/syncs?{query}"
    url = path("failures" if kind == "download" else "report", ui.rejected_chunk)
    url = url.replace("/api/", "/") if kind == "page_report" else url
    return url.replace("map_index=0", query) if query.startswith("map_index=") else f"{url}&{query}"


@pytest.mark.parametrize(
    "kind, query",
    [
        ("api_syncs", f"offset={HUGE}"),
        ("page_syncs", f"offset={HUGE}"),
        ("api_report", f"offset={HUGE}"),
        ("page_report", f"offset={HUGE}"),
        ("api_report", f"offset={MAX_INT + 1}"),
        ("api_report", f"limit={HUGE}"),
        ("api_report", "offset=-1"),
        ("api_report", f"map_index={HUGE}"),
        ("page_report", f"map_index={HUGE}"),
        ("download", f"map_index={HUGE}"),
        ("api_report", "map_index=1e20"),
        ("page_report", "map_index=1e20"),
        ("api_report", "map_index=-2"),
        ("page_syncs", "limit=abc"),
        ("page_report", "limit=0"),
    ],
)
def test_a_number_out_of_range_or_malformed_is_a_422_not_a_500(ui: UiWorld, kind: str, query: str) -> None:
    url = _url(ui, kind, query)
    response = ui.get(url)
    assert response.status_code == 422, (url, response.status_code, response.text[:200])
    if kind.startswith("page"):
        assert response.headers["content-type"].startswith("text/html"), url
        assert "<h1>422</h1>" in response.text and "Invalid parameters" in response.text
    else:
        assert response.headers["content-type"].startswith("application/json")
        assert isinstance(response.json()["detail"], list)


def test_the_html_error_names_the_parameter_and_never_echoes_the_value(ui: UiWorld) -> None:
    response = ui.get("/userattrs/syncs?limit=<script>alert(1)</script>&offset=-5")
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert "limit: Input should be a valid integer" in response.text
    assert "offset: Input should be greater than or equal to 0" in response.text
    assert "<script>alert(1)</script>" not in response.text and "alert(1)" not in response.text


def test_the_largest_allowed_numbers_answer_normally(ui: UiWorld) -> None:
    listed = ui.get(f"/userattrs/api/syncs?offset={MAX_INT}&limit=100")
    assert listed.status_code == 200 and listed.json()["syncs"] == []
    assert ui.get(f"/userattrs/syncs?offset={MAX_INT}").status_code == 200
    report = ui.get(path("report", ui.rejected_chunk) + f"&offset={MAX_INT}")
    assert report.status_code == 200 and report.json()["failures"]["lines"] == []
    assert ui.get(path("report", ui.rejected_chunk).replace("map_index=0", f"map_index={MAX_INT}")).status_code == 404


def test_anonymous_callers_get_401_before_any_parameter_is_judged(ui: UiWorld) -> None:
    assert ui.get(f"/userattrs/api/syncs?offset={HUGE}", who=None).status_code == 401
    assert ui.get("/userattrs/syncs?limit=abc", who=None).status_code == 401
