"""The report's keys are public (README "The report"): the one function that writes them keeps them."""

from __future__ import annotations

import time

from airflow_provider_userattrs.sync.checkpoint import PacingTotals
from airflow_provider_userattrs.sync.report import (
    DryRunPreview,
    FailureSample,
    IncrementalSummary,
    PreviewUser,
    Resumed,
    TryOutcome,
    build_report,
)

COMMON = {"vendor", "conn_id", "dry_run", "duration_seconds", "wall_seconds", "users_per_second", "total"} | {
    "started_at",
    "finished_at",
    "degraded",
}
COUNTS = {"succeeded", "failed", "retryable_users", "failures", "failures_truncated", "failure_file", "requests_sent"}


def outcome(**extra) -> TryOutcome:
    return TryOutcome(
        succeeded=3,
        failed=1,
        retryable_users=1,
        failures=[FailureSample("u1", "plan", "HTTP 503", True)],
        failures_truncated=False,
        failure_file="file:///f/failures.jsonl",
        requests_sent=5,
        **extra,
    )


def report(result: TryOutcome | None, error: str | None = None) -> dict:
    return build_report(
        vendor="dx", conn_id="dx_default", dry_run=False, outcome=result, duration_seconds=2.0, error=error
    )


def test_full_sync_report():
    full = report(outcome(try_number=2, skipped_attributes=0, resumed=Resumed(10, 1)))
    assert set(full) == COMMON | COUNTS | {"try_number", "skipped_attributes", "resumed"}
    assert (full["total"], full["users_per_second"], full["resumed"]) == (4, 2.0, {"offset": 10, "replayed_users": 1})
    assert full["failures"] == [{"user_id": "u1", "attribute": "plan", "reason": "HTTP 503", "retryable": True}]


def test_incremental_dry_run_and_error_reports():
    summary = IncrementalSummary("crm", "userattrs_sync_state in the warehouse (wh)", False, 4, 0)
    incremental = report(outcome(try_number=1, skipped_attributes=0, incremental=summary))
    assert set(incremental) == COMMON | COUNTS | {"try_number", "skipped_attributes", "incremental"}
    assert incremental["incremental"]["changed_users"] == 4
    dry = report(outcome(dry_run=DryRunPreview(3, [PreviewUser("u0", {"plan": "p"})])))
    assert set(dry) == COMMON | COUNTS | {"would_send", "preview"}
    assert dry["preview"] == [{"user_id": "u0", "attributes": {"plan": "p"}}]
    failed = report(None, error="DX refused the token (invalid_auth)")
    assert set(failed) == COMMON | {"error"} and failed["total"] == 0


def test_pacing_keys_and_a_deferred_try_s_worker_and_wall_time():
    pacing = PacingTotals(deferrals=2, waited_seconds=3.25, throttled_requests=7, worker_seconds=6.0)
    pacing.started_at = time.time() - 100.0
    deferred = report(outcome(try_number=1, skipped_attributes=0, pacing=pacing))
    assert set(deferred) == COMMON | COUNTS | {"try_number", "skipped_attributes", "deferrals", "waited_seconds"} | {
        "throttled_requests"
    }
    assert (deferred["deferrals"], deferred["waited_seconds"], deferred["throttled_requests"]) == (2, 3.25, 7)
    # 6 s held before the last resumption + 2 s in it; the wall time counts the waits in the triggerer too.
    assert deferred["duration_seconds"] == 8.0 and 100.0 <= deferred["wall_seconds"] < 110.0
    assert deferred["users_per_second"] == round(4 / deferred["wall_seconds"], 1)


def test_degraded_is_what_the_judge_says_of_the_finished_report_and_empty_without_one():
    from airflow_provider_userattrs.degraded import DegradedRules

    assert report(outcome())["degraded"] == []
    judged = build_report(
        vendor="dx",
        conn_id="dx_default",
        dry_run=False,
        outcome=outcome(),
        duration_seconds=2.0,
        degraded=DegradedRules(failure_ratio=0.1, after_seconds=1.0),
    )
    assert [d["rule"] for d in judged["degraded"]] == ["failed_share", "slow"]
    assert judged["degraded"][0]["message"] == "1 of 4 users failed (25.00%, above degraded_failure_ratio 10.00%)"


def test_a_sync_paced_to_a_quota_reports_the_share_it_used_and_its_429s():
    """Issue 24: next to the counts, how well the quota was used, as :mod:`.quota_use` defines it."""
    pacing = PacingTotals(throttled_requests=1, quota_requests=60, quota_window_seconds=60.0)
    pacing.started_at = time.time() - 10.0
    paced = report(outcome(try_number=1, skipped_attributes=0, pacing=pacing))
    assert paced["quota"] == {"requests": 60, "window_seconds": 60.0}
    assert paced["requests_accepted"] == 4 and paced["throttled_ratio"] == 0.2  # 1 of the 5 requests sent
    # 4 accepted in about 10 s of a quota of one a second: about 40 %.
    assert 0.35 < paced["quota_used"] <= 0.4
    unpaced = report(outcome(try_number=1, skipped_attributes=0, pacing=PacingTotals(started_at=time.time())))
    assert not {"quota", "quota_used", "throttled_ratio"} & set(unpaced)
