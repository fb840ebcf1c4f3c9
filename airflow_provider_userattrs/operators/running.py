"""The parts of one try of a sync that need values, not the operator: where its failures go, which
incremental state it diffs against, and the trigger that brings it back after a wait for the quota."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow_provider_userattrs.sync.checkpoint import checkpoint_store
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import (
    IncrementalState,
    ObjectState,
    RemovalLimit,
    Segment,
    WarehouseState,
    check_removals,
)
from airflow_provider_userattrs.sync.progress import Log
from airflow_provider_userattrs.sync.report import TryOutcome
from airflow_provider_userattrs.sync.storage import FailureFolder, task_folder


def failure_folder(ti: Any, root: str, map_index: int, *, replaying: bool) -> FailureFolder:
    """``<root>/<dag>/<run>/<task>[/map-<i>]``, and its ``replay`` subfolder for a replay."""
    folder = task_folder(root, ti.dag_id, ti.run_id, ti.task_id, map_index)
    return FailureFolder(folder / "replay" if replaying else folder)


def incremental_state(key: str, root: str, *, warehouse_conn_id: str | None, state_table: str) -> IncrementalState:
    """The warehouse table for a SQL source the warehouse can diff (``warehouse_conn_id``), else a document
    in object storage under ``root``."""
    if warehouse_conn_id:
        return WarehouseState(warehouse_conn_id, key, state_table)
    return ObjectState(root, key)


def run_incremental(
    engine: SyncEngine,
    state: IncrementalState,
    segment: Segment,
    context: Any,
    *,
    full_refresh: bool,
    remove_missing: bool,
    log: Log,
    max_removals: RemovalLimit | None = None,
) -> TryOutcome:
    """Send what differs from ``state``; the checkpoint keeps the counts across a deferral.

    With ``max_removals``, what the difference would remove is counted first, and too much stops the run
    before its first request (``RemovalLimitExceeded``).
    """
    with state:
        log.info(
            "Incremental sync %r (state: %s)%s",
            state.state_key,
            state.where,
            ", full refresh" if full_refresh else "",
        )
        if max_removals is not None:
            check_removals(state, segment, max_removals, remove_missing=remove_missing, log=log)
        return engine.run_incremental(
            state,
            segment,
            full_refresh=full_refresh,
            remove_missing=remove_missing,
            checkpoint=checkpoint_store(context, engine.folder.path),
        )


def quota_trigger(until: float) -> Any:
    """The triggerer's wait until ``until`` (Unix seconds): the worker slot is free meanwhile."""
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    return DateTimeTrigger(moment=datetime.fromtimestamp(until, tz=UTC))
