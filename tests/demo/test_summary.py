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
    assert len(calendar_lines) == 1 and calendar_lines[0].split()[:2] == ["3", "users:"]


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


NOT_FOUND = "DX rejected the request (HTTP 422): user_not_found"
NULL_ID = "field 'email' (the user id) is NULL"
ATTRIBUTES = [f"attr{i}" for i in range(8)]


def dx_chunk() -> dict:
    """12 unknown users refused on each of 8 attributes, 13 records without an id (one line each)."""
    unknown = [failure(f"ghost{u}@example.invalid", name, NOT_FOUND) for u in range(12) for name in ATTRIBUTES]
    nameless = [failure(None, None, NULL_ID) for _ in range(13)]
    return {"vendor": "dx", "total": 4121, "succeeded": 4096, "failed": 25, "failures": unknown + nameless}


def test_every_line_counts_users_and_says_so_as_the_headline_does():
    run = combine([dx_chunk()])
    by_reason = {c["reason"]: c for c in run["reasons"]}
    assert (by_reason[NOT_FOUND]["users"], by_reason[NOT_FOUND]["count"]) == (12, 96)
    assert (by_reason[NULL_ID]["users"], by_reason[NULL_ID]["count"]) == (13, 13)
    assert set(by_reason[NOT_FOUND]) == {"reason", "count", "attributes", "users"}, "the JSON keys stay, users added"
    lines = render(run).splitlines()
    assert lines[0].startswith("vendor(s) dx: 4,096 of 4,121 users delivered, 25 failed")
    assert lines[1] == "  failed users by reason, one line per cause:"
    assert lines[2].split(": ", 1)[0].strip() == "13 users" and lines[2].endswith(NULL_ID)
    assert lines[3].strip().startswith(f"12 users: {NOT_FOUND}  [attr0, attr1, attr2, ...]")
    assert lines[3].endswith("(96 attribute values)")
    assert not any(" x " in line for line in lines), "no count without its unit"


def test_users_are_summed_over_chunks_and_counted_from_a_truncated_chunk_s_file(tmp_path):
    path = tmp_path / "failures.jsonl"
    lines = [failure(f"d{u}", name, CALENDAR) for u in range(40) for name in ("a", "b", "c")]  # 120 lines
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    truncated = report(lines[:100], failures_truncated=True, failure_file=f"file://{path}")
    whole = report([failure("e1", "a", CALENDAR), failure("e1", "b", CALENDAR), failure(7, "a", CALENDAR)])
    (cause,) = combine([truncated, whole])["reasons"]
    assert (cause["users"], cause["count"]) == (40 + 2, 120 + 3)


def test_one_user_is_singular():
    text = render(combine([report([failure("solo@example.com", "a", TOO_LONG)])]))
    assert f"1 user: {TOO_LONG}" in text
