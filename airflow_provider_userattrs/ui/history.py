"""Sync history from the metadata DB: the ``report`` XCom of every sync task, joined to its task instance.

This runs inside the API server, where reading XComs and task instances through the metadata session is what
Airflow's own API does. The list query is shaped for the indexes Airflow already has: ``key = 'report'`` uses
``idx_xcom_key``, the join to ``task_instance`` uses its primary key, and only one page of report values is
read (counts and ordering never touch the JSON, except for a vendor filter).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from airflow_provider_userattrs.degraded import degraded_messages
from airflow_provider_userattrs.sync.quota_use import QuotaUse, run_quota_use
from airflow_provider_userattrs.ui.models import QUOTA_KEYS, SyncEntry

REPORT_KEY = "report"


@dataclass(frozen=True)
class SyncFilter:
    """What the history is narrowed to; ``None`` means "any"."""

    dag_id: str | None = None
    vendor: str | None = None
    state: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class TaskKey:
    """One task instance, as the report page and the replay address it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


def report_value(raw: Any) -> dict[str, Any]:
    """The report as a dict: the SDK stores a JSON object, the older serializer a JSON string."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_entry(key: TaskKey, report: dict[str, Any], state: Any, start_date: datetime | None) -> SyncEntry:
    """One history row; quota figures are copied only when the report has them."""
    quota = {k: report[k] for k in QUOTA_KEYS if k in report}
    return SyncEntry(
        dag_id=key.dag_id,
        run_id=key.run_id,
        task_id=key.task_id,
        map_index=key.map_index,
        vendor=report.get("vendor"),
        conn_id=report.get("conn_id"),
        state=str(state.value if hasattr(state, "value") else state) if state is not None else None,
        start_date=start_date,
        total=_int(report.get("total")),
        succeeded=_int(report.get("succeeded")),
        failed=_int(report.get("failed")),
        retryable_users=_int(report.get("retryable_users")),
        requests_sent=_int(report.get("requests_sent")) if report.get("requests_sent") is not None else None,
        duration_seconds=_float(report.get("duration_seconds")),
        try_number=_int(report.get("try_number"), 0) or None,
        dry_run=bool(report.get("dry_run")),
        replay="/replay/" in str(report.get("failure_file") or ""),
        degraded=degraded_messages(report.get("degraded")),
        quota=report["quota"] if isinstance(report.get("quota"), dict) else None,
        started_at=_text(report.get("started_at")),
        finished_at=_text(report.get("finished_at")),
        **quota,
    )


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _base_query(readable_dag_ids: Collection[str], flt: SyncFilter, *columns: Any) -> Select[Any]:
    ti = TaskInstance
    stmt = (
        select(*columns)
        .select_from(XComModel)
        .join(
            ti,
            and_(
                ti.dag_id == XComModel.dag_id,
                ti.run_id == XComModel.run_id,
                ti.task_id == XComModel.task_id,
                ti.map_index == XComModel.map_index,
            ),
        )
        .where(XComModel.key == REPORT_KEY, XComModel.dag_id.in_(list(readable_dag_ids)))
    )
    if flt.dag_id:
        stmt = stmt.where(XComModel.dag_id == flt.dag_id)
    if flt.state:
        stmt = stmt.where(ti.state == flt.state)
    if flt.vendor:
        stmt = stmt.where(XComModel.value["vendor"].as_string() == flt.vendor)
    return stmt


def list_syncs(session: Session, readable_dag_ids: Collection[str], flt: SyncFilter) -> tuple[list[SyncEntry], int]:
    """One page of the history, newest report first, and how many entries match in all."""
    if not readable_dag_ids:
        return [], 0
    total = session.scalar(_base_query(readable_dag_ids, flt, func.count()))
    ti = TaskInstance
    stmt = (
        _base_query(
            readable_dag_ids,
            flt,
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.value,
            ti.state,
            ti.start_date,
        )
        .order_by(XComModel.timestamp.desc(), XComModel.dag_run_id.desc(), XComModel.task_id, XComModel.map_index)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    rows = session.execute(stmt).all()
    entries = [
        to_entry(TaskKey(r.dag_id, r.run_id, r.task_id, r.map_index), report_value(r.value), r.state, r.start_date)
        for r in rows
    ]
    return entries, int(total or 0)


def get_sync(session: Session, key: TaskKey) -> tuple[SyncEntry, dict[str, Any]] | None:
    """The history row and the full report of one task instance; ``None`` when it has no report."""
    ti = TaskInstance
    row = session.execute(
        _base_query([key.dag_id], SyncFilter(), XComModel.value, ti.state, ti.start_date).where(
            XComModel.run_id == key.run_id,
            XComModel.task_id == key.task_id,
            XComModel.map_index == key.map_index,
        )
    ).first()
    if row is None:
        return None
    report = report_value(row.value)
    return to_entry(key, report, row.state, row.start_date), report


FAILED_STATES = frozenset({"failed", "upstream_failed"})


@dataclass(frozen=True)
class RunPoint:
    """Delivered and failed users of one run and vendor: one bar pair of the chart."""

    dag_id: str
    run_id: str
    vendor: str
    start_date: datetime | None
    delivered: int
    failed: int
    failed_tasks: int = 0
    """Sync task instances of the run (chunks) in a failed state."""
    degraded_tasks: int = 0
    """Chunks that succeeded degraded."""
    quota_use: QuotaUse | None = None
    """The run's share of the quota used and its 429s, over its chunks (None when no quota was declared)."""

    @property
    def status(self) -> str:
        """``failed`` when a chunk failed, else ``degraded`` when one is, else ``ok``."""
        return "failed" if self.failed_tasks else "degraded" if self.degraded_tasks else "ok"


def is_failed(entry: SyncEntry) -> bool:
    return entry.state in FAILED_STATES


def run_points(entries: Iterable[SyncEntry]) -> list[RunPoint]:
    """Chunks summed per (run, vendor), oldest first, as the chart draws them."""
    acc: dict[tuple[str, str, str], list[Any]] = {}
    chunks: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for e in entries:
        chunks.setdefault((e.dag_id, e.run_id, e.vendor or "?"), []).append(e.model_dump())
        slot = acc.setdefault((e.dag_id, e.run_id, e.vendor or "?"), [e.start_date, 0, 0, 0, 0])
        if e.start_date and (slot[0] is None or e.start_date < slot[0]):
            slot[0] = e.start_date
        slot[1] += e.succeeded
        slot[2] += e.failed
        slot[3] += is_failed(e)
        slot[4] += bool(e.degraded) and not is_failed(e)
    points = [
        RunPoint(d, r, v, start, delivered, failed, failed_tasks, degraded_tasks, run_quota_use(chunks[(d, r, v)]))
        for (d, r, v), (start, delivered, failed, failed_tasks, degraded_tasks) in acc.items()
    ]
    return sorted(points, key=lambda p: (p.start_date is None, p.start_date or datetime.min, p.run_id))
