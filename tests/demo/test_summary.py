"""The demo's failure summary: one line per cause with its count, whatever the user or the attribute."""

from __future__ import annotations

import json

from airflow_provider_userattrs.demo.summary import combine, render

CALENDAR = "not a real calendar date or time (ISO 8601 expected, e.g. 2020-10-01 or 2020-10-01T18:30:00Z)"
TOO_LONG = "longer than 255 characters (Fyno's limit for strings)"


def failure(user_id, attribute, reason):
    return {"user_id": user_id, "attribute": attribute, "reason": reason, "retryable": False}


def report(failures, **extra):
    return {"vendor": "fyno", "total": 10, "succeeded": 10 - len(failures), "failed": len(failures), **extra,
            "failures": failures}  # fmt: skip


def test_failures_are_grouped_by_reason_one_line_per_cause_with_its_count():
    chunks = [
        report([failure("d1", "last_purchase_date", CALENDAR), failure("d2", "full_name", TOO_LONG)]),
        report([failure("d3", "signup_date", CALENDAR), failure("d4", "last_purchase_date", CALENDAR)]),
        report([failure("ghost@example.invalid", "tier", "DX rejected the request (HTTP 422): user_not_found")]),
    ]
    run = combine(chunks)
    assert [(c["reason"], c["count"]) for c in run["reasons"]] == [
        (CALENDAR, 3),
        (TOO_LONG, 1),
        ("DX rejected the request (HTTP 422): user_not_found", 1),
    ]
    assert run["reasons"][0]["attributes"] == ["last_purchase_date", "signup_date"]
    text = render(run)
    calendar_lines = [line for line in text.splitlines() if CALENDAR in line]
    assert len(calendar_lines) == 1 and calendar_lines[0].split()[:2] == ["3", "x"]


def test_a_reason_quoting_the_failing_users_own_id_still_groups():
    chunks = [
        report([failure("alice@example.com", "a", "user alice@example.com is unknown")]),
        report([failure("bob@example.com", "b", "user bob@example.com is unknown")]),
    ]
    assert [(c["reason"], c["count"]) for c in combine(chunks)["reasons"]] == [("user <user> is unknown", 2)]


def test_a_truncated_report_is_counted_from_its_failure_file(tmp_path):
    path = tmp_path / "failures.jsonl"
    lines = [failure(f"d{i}", "last_purchase_date", CALENDAR) for i in range(250)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    chunk = report(lines[:100], failures_truncated=True, failure_file=f"file://{path}")
    run = combine([chunk])
    assert [(c["reason"], c["count"]) for c in run["reasons"]] == [(CALENDAR, 250)]
    assert run["reasons_sampled_chunks"] == 0


def test_an_unreadable_failure_file_falls_back_to_the_sample_and_says_so(tmp_path):
    lines = [failure(f"d{i}", "x", TOO_LONG) for i in range(100)]
    chunk = report(lines, failures_truncated=True, failure_file=f"file://{tmp_path}/missing.jsonl")
    run = combine([chunk])
    assert [(c["reason"], c["count"]) for c in run["reasons"]] == [(TOO_LONG, 100)]
    assert "counted from the first 100 failures of 1 chunks" in render(run)


def test_the_run_s_quota_use_is_what_the_vendor_accepted_over_the_run_s_span():
    from airflow_provider_userattrs.demo.summary import judge_run

    chunk = {"vendor": "dx", "total": 100, "succeeded": 100, "failed": 0, "retryable_users": 0}
    reports = [
        {**chunk, "requests_sent": 110, "throttled_requests": 10, "deferrals": 1}
        | {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:10+00:00"},
        {**chunk, "requests_sent": 100, "throttled_requests": 0, "deferrals": 0}
        | {"started_at": "2026-01-01T00:00:05+00:00", "finished_at": "2026-01-01T00:00:20+00:00"},
    ]
    lines: list[str] = []
    run = judge_run(reports, 0.0, lines.append, quota=(600, 60.0))
    # 200 accepted over 20 s against 10 requests/s: all of it.
    assert (run["requests_accepted"], run["span_seconds"], run["quota_used"]) == (200, 20.0, 1.0)
    assert run["throttled_requests"] == 10 and run["deferrals"] == 1
    assert "100.0 % used over 20 s" in lines[0]
