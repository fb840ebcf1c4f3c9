"""One definition of "share of the declared quota used" (issue 24), for the summary, the report, the UI and the
benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_userattrs.sync.quota_use import QuotaUse, quota_use, run_quota_use


def test_the_share_used_is_what_was_accepted_over_what_the_quota_allows_in_the_span():
    use = quota_use(accepted=1500, throttled=15, first=100.0, last=130.0, quota_requests=200, window_seconds=5)
    assert use.share_used == pytest.approx(1500 / (40 * 30))  # 40 requests/s for 30 s
    assert use.throttled_ratio == pytest.approx(15 / 1515)  # of the requests sent, not of those accepted
    assert use.as_dict() == {
        "quota": {"requests": 200, "window_seconds": 5},
        "span_seconds": 30.0,
        "requests_accepted": 1500,
        "throttled_requests": 15,
        "quota_used": 1.25,
        "throttled_ratio": 0.0099,
    }
    assert use.describe() == (
        "quota 200 requests per 5 s: 125.0 % used over 30 s (1,500 requests accepted, 15 answered 429: 0.99 %)"
    )


def test_a_short_run_can_show_more_than_the_sustained_rate_a_window_starting_empty_lets_a_burst_through():
    # 200 at once (the empty window), then 200 per 5 s: 400 in 5 s is the most the quota allows, 200 % of its rate.
    assert quota_use(400, 0, 0.0, 5.0, 200, 5.0).share_used == pytest.approx(2.0)


def test_times_may_be_unix_seconds_datetimes_or_iso_text():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first, last in (
        (start.timestamp(), start.timestamp() + 60),
        (start, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00"),
    ):
        assert quota_use(1000, 0, first, last, 1000, 60).share_used == pytest.approx(1.0)


def test_nothing_sent_or_no_time_spent_is_no_share_rather_than_a_division_by_zero():
    assert quota_use(0, 0, 5.0, 5.0, 1000, 60).share_used is None
    assert quota_use(0, 0, 0.0, 5.0, 1000, 60).throttled_ratio is None
    assert quota_use(1, 0, 5.0, 4.0, 1000, 60).span_seconds == 0.0  # clocks of two workers: never negative


def test_a_quota_of_nothing_is_refused():
    with pytest.raises(ValueError, match="above 0"):
        quota_use(1, 0, 0.0, 1.0, 0, 60)


def test_a_run_is_its_chunks_from_the_first_start_to_the_last_finish():
    chunk = {"vendor": "dx", "total": 100, "succeeded": 100}
    reports = [
        {**chunk, "requests_sent": 110, "throttled_requests": 10}
        | {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:10+00:00"},
        {**chunk, "requests_sent": 100, "throttled_requests": 0}
        | {"started_at": "2026-01-01T00:00:05+00:00", "finished_at": "2026-01-01T00:00:20+00:00"},
        None,  # a chunk that never reported
        {**chunk, "requests_sent": 0},  # a dry run says nothing of time
    ]
    use = run_quota_use(reports, (600, 60.0))
    assert isinstance(use, QuotaUse)
    assert (use.accepted, use.throttled, use.span_seconds) == (200, 10, 20.0)
    assert use.share_used == pytest.approx(1.0)  # 200 over 20 s against 10 requests/s
    assert run_quota_use(reports[0], (600, 60.0)) == quota_use(100, 10, 0.0, 10.0, 600, 60.0)
    assert run_quota_use([None, {"requests_sent": 5}], (600, 60.0)) is None


def test_a_run_s_quota_is_the_one_its_reports_say_their_client_paced_to():
    timed = {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00"}
    paced = {
        **timed,
        "requests_sent": 1010,
        "throttled_requests": 10,
        "quota": {"requests": 1000, "window_seconds": 60},
    }
    use = run_quota_use([paced, {**timed, "requests_sent": 500}])
    assert use is not None and (use.quota_requests, use.window_seconds, use.accepted) == (1000, 60.0, 1500)
    assert run_quota_use([{**timed, "requests_sent": 500}]) is None  # no quota declared: no share to speak of
