"""The report's keys are public (README "The report"): the one function that writes them keeps them."""

from __future__ import annotations

from airflow_provider_userattrs.sync.report import (
    DryRunPreview,
    FailureSample,
    IncrementalSummary,
    PreviewUser,
    Resumed,
    TryOutcome,
    build_report,
)

COMMON = {"vendor", "conn_id", "dry_run", "duration_seconds", "users_per_second", "total"}
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
