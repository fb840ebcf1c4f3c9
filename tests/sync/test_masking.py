"""Vendor text reaches a report or a failure file only through Airflow's secrets masker.

The client here does not scrub anything (a fake vendor that echoes the token in every reason): the masking
of ``build_report`` and of the failure-file writer must hold on its own. The token is registered the way the
hook registers it (``compat.mask_secret`` when it reads the connection).
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs import compat
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult, UserUpdate
from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
from airflow_provider_userattrs.sync.report import FailureSample, TryOutcome, build_report
from airflow_provider_userattrs.sync.storage import FailureFolder, read_lines, write_lines
from tests.sync.fakes import FakeVendor
from tests.sync.test_engine import run_try

TOKEN = "echoed-token-test-masking-5a1f0c9e7b"
"""Registered with the masker for the rest of the session: it appears in no other test."""


@pytest.fixture(autouse=True)
def registered_token() -> str:
    assert compat._find_redactors(), "the installed Airflow offers a secrets masker"
    compat.mask_secret(TOKEN)
    return TOKEN


class EchoingVendor(FakeVendor):
    """A vendor that refuses every attribute, quoting the token it was sent (a client that does not scrub)."""

    def apply(self, update: UserUpdate) -> UserResult:
        self.sends[update.user_id] += 1
        results = [
            AttributeResult(update.user_id, name, Outcome.REJECTED, value, f'{{"detail": "Invalid token {TOKEN}"}}')
            for name, value in update.attributes.items()
        ]
        return UserResult(update.user_id, results, ref=update.ref)


def test_build_report_masks_the_error_and_every_reason() -> None:
    outcome = TryOutcome(
        succeeded=0,
        failed=1,
        retryable_users=0,
        failures=[FailureSample("u1", "plan", f"DX rejected the request (HTTP 422): Invalid token {TOKEN}", False)],
        failures_truncated=False,
        failure_file="file:///f/failures.jsonl",
        requests_sent=1,
    )
    report = build_report(
        vendor="dx",
        conn_id="dx_default",
        dry_run=False,
        outcome=outcome,
        duration_seconds=1.0,
        error=f"DX refused the credentials of dx_default (HTTP 401: Invalid token {TOKEN}); check the API token",
    )
    assert TOKEN not in json.dumps(report)
    assert (
        report["error"] == "DX refused the credentials of dx_default (HTTP 401: Invalid token ***); check the API token"
    )
    assert report["failures"][0] == {
        "user_id": "u1",
        "attribute": "plan",
        "reason": "DX rejected the request (HTTP 422): Invalid token ***",
        "retryable": False,
    }


def test_a_sync_whose_vendor_echoes_the_token_leaves_it_in_neither_file_nor_report(tmp_path) -> None:
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    records = [{"user_id": f"u{i}", "plan": f"p{i}"} for i in range(6)]
    outcome = run_try(EchoingVendor(), folder, MemoryCheckpoint(), records, 1)
    assert outcome.failed == 6
    report = build_report(vendor="fake", conn_id="c", dry_run=False, outcome=outcome, duration_seconds=1.0)
    written = "".join(path.read_text() for path in tmp_path.rglob("*.jsonl"))
    assert written.count("Invalid token ***") == 12  # six lines in the chunk's part, six in the failure file
    assert TOKEN not in written and TOKEN not in json.dumps(report)
    assert {line["value"] for line in read_lines(outcome.failure_file)} == {f"p{i}" for i in range(6)}


def test_values_are_written_exactly_only_the_vendor_s_words_are_masked(tmp_path) -> None:
    path = ObjectStoragePath(f"file://{tmp_path}/f.jsonl")
    line = {"user_id": "u1", "attribute": "note", "value": f"my {TOKEN}", "reason": f"refused {TOKEN}"}
    write_lines(path, [line])
    (back,) = read_lines(path)
    assert back["reason"] == "refused ***"
    assert back["value"] == f"my {TOKEN}", "a replay resends the value: it is the record's, not the vendor's"


def test_redact_returns_the_value_unchanged_without_a_masker_and_never_raises(monkeypatch) -> None:
    monkeypatch.setattr(compat, "_redactors", [])
    assert compat.redact(f"x {TOKEN}") == f"x {TOKEN}"

    def broken(value: object) -> object:
        raise RuntimeError("masker broken")

    monkeypatch.setattr(compat, "_redactors", [broken])
    assert compat.redact("text") == "text"
    monkeypatch.setattr(compat, "_MASKER_MODULES", (("no.such.module", "airflow_provider_userattrs"),))
    assert compat._find_redactors() == []
