"""Issue 24: the history says how well each task and each run used the vendor's quota (one definition:
:mod:`airflow_provider_userattrs.sync.quota_use`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_userattrs.ui.history import TaskKey, run_points, to_entry
from airflow_provider_userattrs.ui.pages import chart_svg

START = datetime(2026, 12, 6, 2, 15, tzinfo=UTC)


def chunk(index: int, sent: int, throttled: int, started: str, finished: str) -> dict:
    return {
        "vendor": "dx",
        "conn_id": "dx_default",
        "total": 100,
        "succeeded": 100,
        "failed": 0,
        "requests_sent": sent,
        "throttled_requests": throttled,
        "throttled_ratio": round(throttled / sent, 4),
        "quota_used": 0.9,
        "quota": {"requests": 600, "window_seconds": 60.0},
        "started_at": started,
        "finished_at": finished,
    }


def test_a_run_s_quota_use_is_over_its_chunks_from_the_first_start_to_the_last_end():
    reports = [
        chunk(0, 110, 10, "2026-12-06T02:15:00+00:00", "2026-12-06T02:15:10+00:00"),
        chunk(1, 100, 0, "2026-12-06T02:15:05+00:00", "2026-12-06T02:15:20+00:00"),
    ]
    entries = [
        to_entry(TaskKey("sync", "run1", "push_chunk", i), report, "success", START) for i, report in enumerate(reports)
    ]
    assert entries[0].throttled_ratio == pytest.approx(0.0909) and entries[0].quota_used == 0.9
    (point,) = run_points(entries)
    assert point.quota_use is not None
    assert (point.quota_use.accepted, point.quota_use.throttled, point.quota_use.span_seconds) == (200, 10, 20.0)
    assert point.quota_use.share_used == pytest.approx(1.0)  # 200 in 20 s of 10 a second
    assert "100.0 % used over 20 s" in chart_svg([point])


def test_a_run_without_a_declared_quota_says_nothing_of_one():
    report = chunk(0, 100, 0, "2026-12-06T02:15:00+00:00", "2026-12-06T02:15:10+00:00")
    del report["quota"], report["quota_used"], report["throttled_ratio"]
    (point,) = run_points([to_entry(TaskKey("sync", "run1", "push_chunk", 0), report, "success", START)])
    assert point.quota_use is None and "% used" not in chart_svg([point])
