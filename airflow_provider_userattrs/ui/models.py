"""What the plugin's JSON endpoints answer: typed models, so that the contract is written down once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

QUOTA_KEYS = ("deferrals", "waited_seconds", "throttled_requests", "throttled_ratio", "quota_used")
"""Report keys a quota-aware sync may add; shown only when a report has them (``quota_used`` and
``throttled_ratio`` as :mod:`airflow_provider_userattrs.sync.quota_use` defines them)."""


class SyncEntry(BaseModel):
    """One sync task instance (one mapped chunk) as the history lists it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    vendor: str | None = None
    conn_id: str | None = None
    state: str | None = None
    start_date: datetime | None = None
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    retryable_users: int = 0
    requests_sent: int | None = None
    duration_seconds: float | None = None
    try_number: int | None = None
    dry_run: bool = False
    replay: bool = False
    degraded: list[str] = []
    """Why the sync is degraded (the report's ``degraded`` rules, as messages); empty when healthy."""
    deferrals: int | None = None
    waited_seconds: float | None = None
    throttled_requests: int | None = None
    throttled_ratio: Any = None
    """429s over the requests sent."""
    quota_used: Any = None
    """Requests accepted over what the declared quota allowed in the task's time (1.0: all of it)."""
    quota: dict[str, Any] | None = None
    """The quota the client paced to (``requests``, ``window_seconds``); None when none was declared."""
    started_at: str | None = None
    finished_at: str | None = None
    """The report's wall-clock span (ISO 8601): what a run's quota use is measured over."""


class SyncList(BaseModel):
    """A page of the history, shaped like Airflow's own collections."""

    syncs: list[SyncEntry]
    total_entries: int


class ReasonGroup(BaseModel):
    """Failures sharing one reason (the user's own id taken out, so that one reason is one group)."""

    reason: str
    retryable: bool
    count: int
    """Failure lines: one per (user, attribute)."""
    users: int
    attributes: list[str]


class FailurePage(BaseModel):
    """A page of failure-file lines; ``source`` says whether they come from the file or the report."""

    source: str
    total_lines: int | None
    limit: int
    offset: int
    lines: list[dict[str, Any]]


class ReportResponse(BaseModel):
    """The full report of one sync task instance, with its failures grouped and a page of failure lines."""

    sync: SyncEntry
    report: dict[str, Any]
    reasons: list[ReasonGroup]
    reasons_source: str
    retryable_lines: int
    failure_file_readable: bool
    failure_file_problem: str | None = None
    failures: FailurePage
    replay_supported: bool


class ReplayResponse(BaseModel):
    """The run a replay started."""

    dag_id: str
    dag_run_id: str
    replay_from: str
    retryable_lines: int
