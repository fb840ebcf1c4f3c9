"""Failure files and reports are always writable: text UTF-8 cannot hold (a lone surrogate) is escaped.

Driven through the engine with the fake client (no Airflow task): a record whose user id, attribute name and
value hold lone surrogates is rejected, its failure line written and read back exactly, and the report built
from the try can be stored (UTF-8 JSON) with the text shown escaped.
"""

from __future__ import annotations

import json

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
from airflow_provider_userattrs.sync.report import FailureSample, TryOutcome, build_report
from airflow_provider_userattrs.sync.storage import FailureFolder, read_lines, write_lines, write_text_atomically
from tests.sync.fakes import FakeVendor
from tests.sync.test_engine import run_try

LONE = "\ud800"
OTHER = "\udcff"


def _stored(report: dict) -> dict:
    """What a JSON store keeps of the report: UTF-8 text (raises on what UTF-8 cannot hold)."""
    return json.loads(json.dumps(report, ensure_ascii=False).encode("utf-8"))


def test_a_record_holding_lone_surrogates_is_written_and_read_back_exactly(tmp_path):
    records = [
        {"user_id": "u0", "plan": "p0"},
        {"user_id": f"u1{LONE}", "plan": "p1", "reserved": f"x{LONE}y"},  # the vendor rejects "reserved"
        {"user_id": "u2", f"pl{OTHER}n": "INVALID"},  # the validator rejects it, quoting the attribute's name
        {"user_id": "u3", "plan": "p3"},
    ]
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    outcome = run_try(FakeVendor(), folder, MemoryCheckpoint(), records, 1)

    assert (outcome.succeeded, outcome.failed) == (2, 2)
    lines = {line["user_id"]: line for line in read_lines(outcome.failure_file)}
    assert lines[f"u1{LONE}"]["value"] == f"x{LONE}y" and lines[f"u1{LONE}"]["attribute"] == "reserved"
    assert lines["u2"]["attribute"] == f"pl{OTHER}n" and lines["u2"]["reason"] == f"pl{OTHER}n is invalid"
    raw = (tmp_path / "task" / "failures.jsonl").read_bytes()
    raw.decode("utf-8")  # the file is UTF-8 throughout
    assert b"\\ud800" in raw and b"\\udcff" in raw  # JSON escapes, which read back to the exact text

    report = build_report(vendor="fake", conn_id="c", dry_run=False, outcome=outcome, duration_seconds=1.0)
    shown = {f["user_id"]: f for f in _stored(report)["failures"]}
    assert set(shown) == {"u1\\ud800", "u2"}  # the report shows the surrogate escaped
    assert shown["u2"]["reason"] == "pl\\udcffn is invalid"


def test_a_retry_writes_the_same_record_again_without_crashing(tmp_path):
    records = [{"user_id": "u0", "reserved": LONE}, {"user_id": "u1", "plan": LONE}]
    world = FakeVendor(transient={"u1": 1})
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    checkpoint = MemoryCheckpoint()
    first = run_try(world, folder, checkpoint, records, 1)
    assert first.retryable_users == 1  # u1's value waits for the next try, in a part file
    second = run_try(world, folder, checkpoint, records, 2)
    assert (second.succeeded, second.failed, second.retryable_users) == (1, 1, 0)
    assert world.stored["u1"] == {"plan": LONE}  # the part file gave the exact value back
    assert [line["value"] for line in read_lines(second.failure_file)] == [LONE]


def test_build_report_escapes_every_text_utf8_cannot_hold():
    outcome = TryOutcome(
        succeeded=0,
        failed=1,
        retryable_users=0,
        failures=[FailureSample(f"u{LONE}", f"a{LONE}", f"vendor said {OTHER}", False)],
        failures_truncated=False,
        failure_file="file:///f/failures.jsonl",
        requests_sent=1,
    )
    report = build_report(
        vendor="dx", conn_id="c", dry_run=False, outcome=outcome, duration_seconds=1.0, error=f"boom {LONE}"
    )
    stored = _stored(report)
    assert stored["error"] == "boom \\ud800"
    assert stored["failures"] == [
        {"user_id": "u\\ud800", "attribute": "a\\ud800", "reason": "vendor said \\udcff", "retryable": False}
    ]


def test_failure_lines_and_documents_are_utf8_and_keep_other_text_as_is(tmp_path):
    path = ObjectStoragePath(f"file://{tmp_path}/f.jsonl")
    lines = [{"user_id": "é", "value": "naïve ✓", "reason": "ok"}, {"user_id": "x", "value": f"a{LONE}"}]
    assert write_lines(path, lines) == 2
    raw = (tmp_path / "f.jsonl").read_bytes()
    assert raw.splitlines()[0].decode("utf-8") == '{"user_id": "é", "value": "naïve ✓", "reason": "ok"}'
    assert list(read_lines(path)) == lines
    document = ObjectStoragePath(f"file://{tmp_path}/state.json")
    write_text_atomically(document, json.dumps({"k": LONE}, ensure_ascii=False))
    assert json.loads((tmp_path / "state.json").read_bytes()) == {"k": LONE}
