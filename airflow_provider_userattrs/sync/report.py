"""The report of a try: what :func:`build_report` turns into the XCom ``return_value`` / ``report``.

Its keys and meanings are public (README "The report"); they are written in this one function only.

What a person reads of a report is safe to show and always storable: the vendor's words (``error``, each
failure's ``reason``) pass through Airflow's secrets masker (a vendor that quotes the token it refused shows
``***``), and text that UTF-8 cannot hold (a lone surrogate in a user id or a value) is shown escaped
(``\\ud800``); the failure file keeps the exact value.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_userattrs.compat import redact
from airflow_provider_userattrs.sync.checkpoint import PacingTotals
from airflow_provider_userattrs.sync.quota_use import quota_use
from airflow_provider_userattrs.sync.storage import Line, writable_text

MAX_REPORTED_FAILURES = 100


@dataclass(frozen=True)
class FailureSample:
    """One (user, attribute) failure as the report shows it; the failure file has the whole line."""

    user_id: object
    attribute: str | None
    reason: str | None
    retryable: bool


def sample_failures(lines: Iterable[Line]) -> tuple[list[FailureSample], bool]:
    """The first :data:`MAX_REPORTED_FAILURES` failures, and whether there were more."""
    sample = list(itertools.islice(lines, MAX_REPORTED_FAILURES + 1))
    failures = [
        FailureSample(line.get("user_id"), line.get("attribute"), line.get("reason"), bool(line.get("retryable")))
        for line in sample[:MAX_REPORTED_FAILURES]
    ]
    return failures, len(sample) > MAX_REPORTED_FAILURES


@dataclass(frozen=True)
class Resumed:
    """Where this try started: source users settled before it, users of earlier tries it resent."""

    offset: int
    replayed_users: int


@dataclass(frozen=True)
class IncrementalSummary:
    state_key: str
    state: str
    """Where the state lives (a table in the warehouse, or a document's path)."""
    full_refresh: bool
    changed_users: int
    removed_users: int


@dataclass(frozen=True)
class PreviewUser:
    user_id: object
    attributes: Mapping[str, object]


@dataclass(frozen=True)
class DryRunPreview:
    would_send: int
    preview: list[PreviewUser]


@dataclass(frozen=True)
class TryOutcome:
    """What one try settled, counted once per user (``succeeded + failed == total``)."""

    succeeded: int
    failed: int
    """Users with a rejection, plus users whose transient failures no try has settled (``retryable_users``)."""
    retryable_users: int
    failures: list[FailureSample]
    failures_truncated: bool
    failure_file: str
    requests_sent: int
    try_number: int | None = None
    """None for a dry run, whose report has neither try number nor skipped attributes."""
    skipped_attributes: int | None = None
    resumed: Resumed | None = None
    incremental: IncrementalSummary | None = None
    dry_run: DryRunPreview | None = None
    paused: bool = False
    """The engine stopped after a chunk (the quota held users back, or it was asked to); the state is saved
    for a resumption."""
    resume_at: float | None = None
    """When paused for the vendor's quota: the wall-clock time (Unix seconds) the held-back users may go."""
    pacing: PacingTotals | None = None
    """What the vendor's quota cost (None for a dry run)."""

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


def build_report(
    *,
    vendor: str,
    conn_id: str,
    dry_run: bool,
    outcome: TryOutcome | None,
    duration_seconds: float,
    error: str | None = None,
    degraded: Callable[[Mapping[str, Any]], list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """The report pushed to XCom. ``outcome`` is None when the sync stopped on ``error`` (bad credentials).

    ``degraded`` judges the finished report (``degraded.py``): its answer is the report's
    ``degraded`` list (the rules the run tripped; empty when healthy, and without a judge).
    """
    report: dict[str, Any] = {"vendor": vendor, "conn_id": conn_id, "dry_run": dry_run}
    if error is not None:
        report["error"] = vendor_text(error)
    total = outcome.total if outcome is not None else 0
    if outcome is not None:
        report.update(_counts(outcome))
    report["total"] = total
    pacing = outcome.pacing if outcome is not None else None
    # Time in a worker, over every resumption of a deferred try; the wall time also counts the waits.
    worker = duration_seconds + (pacing.worker_seconds if pacing is not None else 0.0)
    wall = max(worker, time.time() - pacing.started_at) if pacing and pacing.started_at else worker
    report["duration_seconds"] = round(worker, 3)
    report["wall_seconds"] = round(wall, 3)
    finished = time.time()
    report["started_at"] = _iso(finished - wall)
    report["finished_at"] = _iso(finished)
    report["users_per_second"] = round(total / wall, 1) if wall > 0 else None
    if outcome is not None and pacing is not None and pacing.quota_requests and pacing.quota_window_seconds:
        throttled = pacing.throttled_requests
        use = quota_use(
            outcome.requests_sent - throttled,
            throttled,
            finished - wall,
            finished,
            pacing.quota_requests,
            pacing.quota_window_seconds,
        )
        report.update(use.as_dict())
    report["degraded"] = degraded(report) if degraded is not None else []
    return {key: storable(value) for key, value in report.items()}


def vendor_text(text: object) -> str:
    """A vendor's words as a report shows them: secrets masked, always storable."""
    return writable_text(str(redact(str(text))))


def storable(value: Any) -> Any:
    """``value`` with every text (keys too) that UTF-8 cannot hold escaped, so that XCom can always store it."""
    if isinstance(value, str):
        return writable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(storable(v) for v in value)
    return value


def _counts(outcome: TryOutcome) -> dict[str, object]:
    counts: dict[str, object] = {
        "total": outcome.total,
        "succeeded": outcome.succeeded,
        "failed": outcome.failed,
        "retryable_users": outcome.retryable_users,
        "failures": [
            {
                "user_id": f.user_id,
                "attribute": f.attribute,
                "reason": None if f.reason is None else vendor_text(f.reason),
                "retryable": f.retryable,
            }
            for f in outcome.failures
        ],
        "failures_truncated": outcome.failures_truncated,
        "failure_file": outcome.failure_file,
    }
    if outcome.dry_run is not None:
        counts["would_send"] = outcome.dry_run.would_send
        counts["preview"] = [{"user_id": p.user_id, "attributes": dict(p.attributes)} for p in outcome.dry_run.preview]
    counts["requests_sent"] = outcome.requests_sent
    if outcome.try_number is not None:
        counts["try_number"] = outcome.try_number
    if outcome.skipped_attributes is not None:
        counts["skipped_attributes"] = outcome.skipped_attributes
    if outcome.pacing is not None:
        counts["deferrals"] = outcome.pacing.deferrals
        counts["waited_seconds"] = round(outcome.pacing.waited_seconds, 3)
        counts["throttled_requests"] = outcome.pacing.throttled_requests
    if outcome.resumed is not None:
        counts["resumed"] = {"offset": outcome.resumed.offset, "replayed_users": outcome.resumed.replayed_users}
    if outcome.incremental is not None:
        inc = outcome.incremental
        counts["incremental"] = {
            "state_key": inc.state_key,
            "state": inc.state,
            "full_refresh": inc.full_refresh,
            "changed_users": inc.changed_users,
            "removed_users": inc.removed_users,
        }
    return counts


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="seconds")
