"""One try of a sync, as the operator's ``execute`` runs it: the rendered parameters read, the try's parts set
up (results table, client, failure folder, engine), the engine run, a long wait for the vendor's quota handed to
the triggerer, and the report published.

What the task makes of the report (the verdict, the asset event) is the operator's: :func:`run_try` returns it
as a :class:`FinishedTry`.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from airflow_provider_userattrs import metrics
from airflow_provider_userattrs.client import Client
from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.config import truthy
from airflow_provider_userattrs.errors import ConnectionConfigError, FatalVendorError, SourceConfigError
from airflow_provider_userattrs.operators.parameters import TryParameters, keep_read, read_rendered
from airflow_provider_userattrs.operators.publishing import metrics_baseline, publish
from airflow_provider_userattrs.operators.running import (
    failure_folder,
    incremental_state,
    quota_trigger,
    run_incremental,
)
from airflow_provider_userattrs.operators.sync_task import SyncTask
from airflow_provider_userattrs.operators.verdict import FinishedTry
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.checkpoint import CheckpointError, checkpoint_store
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import RemovalLimitExceeded
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.nulls import SkippingNulls
from airflow_provider_userattrs.sync.progress import Progress
from airflow_provider_userattrs.sync.report import TryOutcome, build_report
from airflow_provider_userattrs.sync.results_table import ResultsTable, results_table_of_try
from airflow_provider_userattrs.sync.sources import Item
from airflow_provider_userattrs.sync.storage import FailureFolder, ReplayLedger, default_failure_root

CHUNK_LABEL = "userattrs_chunk"
"""The context variable naming the chunk, which the operator's ``map_index_template`` renders."""


@dataclass(frozen=True)
class TryParts:
    """What one try is made of, set up before the engine runs."""

    read: TryParameters
    map_index: int
    """The chunk's index when the task is mapped, else -1."""
    try_number: int
    failure_root: str
    client: Client
    results: ResultsTable | None
    engine: SyncEngine


@dataclass(frozen=True)
class EngineRun:
    """How the engine's run ended: its outcome, or the error that stopped it when no retry can help."""

    outcome: TryOutcome | None = None
    error: str | None = None


def run_try(task: SyncTask, context: Any, *, resuming: bool) -> FinishedTry:
    """Sync, publish the report (XCom ``report``, metrics) and return it to be judged.

    :param resuming: the try resumes after a deferral (``execute_complete``): it continues from its checkpoint.
    :raises TaskDeferred: the vendor's quota asks for a long wait: the triggerer holds it (``deferrable``).
    """
    started = time.monotonic()
    ti = context["ti"]
    read = read_rendered(task)
    keep_read(task, read)
    context[CHUNK_LABEL] = chunk_label(task)
    parts = set_up(task, ti, read)
    baseline = metrics_baseline(  # before the engine runs
        context,
        parts.engine.folder.path,
        dry_run=read.dry_run,
        continues_checkpoint=not (task.incremental and not task.replay_from),  # an incremental try starts at 0
        resuming=resuming,
    )
    result = run_guarded(parts, functools.partial(run_engine, task, parts, context))
    if (outcome := result.outcome) is not None and outcome.paused and outcome.resume_at is not None:
        metrics.carry_baseline(ti, baseline)  # the resumed try's metrics count from this try's start
        defer_until(task, outcome.resume_at, outcome)
    report = try_report(task.conn_id, parts, result, time.monotonic() - started)
    publish(ti, report, baseline)
    return FinishedTry(report, result.error, parts.try_number, int(task.retries or 0), read.max_failure_ratio)


def try_report(conn_id: str, parts: TryParts, result: EngineRun, duration_seconds: float) -> dict[str, Any]:
    """The report (README "The report"): what the try settled, or the error that stopped it, and why a successful
    run is degraded."""
    return build_report(
        vendor=parts.client.vendor_name,
        conn_id=conn_id,
        dry_run=parts.read.dry_run,
        outcome=result.outcome,
        duration_seconds=duration_seconds,
        error=result.error,
        degraded=parts.read.degraded,
    )


def chunk_label(task: SyncTask) -> str:
    """The chunk's name in the UI (``map_index_template``) and in the log: its source, and its size when known."""
    size = task.source_size()
    return f"{task.source_label()} ({size} users)" if size is not None else task.source_label()


def set_up(task: SyncTask, ti: Any, read: TryParameters) -> TryParts:
    """The try's parts. The results table and the connection come first: one that can never work fails the try
    before the source is read."""
    given_index = getattr(ti, "map_index", None)
    map_index = int(given_index) if given_index is not None else -1
    results = None if read.dry_run else try_results_table(task, ti, map_index)
    # A long wait for the vendor's quota defers the task (run_try): the client says so on its results.
    # Not deferrable: the client sleeps the wait in this worker.
    client = checked_client(task, defer_long_waits=task.deferrable and not read.dry_run)
    root = task.failure_path or default_failure_root()
    folder = failure_folder(ti, root, map_index, replaying=bool(task.replay_from))
    try_number = int(getattr(ti, "try_number", 1) or 1)
    engine = sync_engine(task, client, folder, try_number, results, skip_nulls=read.null_values == "skip")
    return TryParts(read, map_index, try_number, root, client, results, engine)


def try_results_table(task: SyncTask, ti: Any, map_index: int) -> ResultsTable | None:
    """This try's results table (``results_table``, ``sync/results_table.py``), not opened yet, or None."""
    return results_table_of_try(
        ti,
        map_index,
        table=task.results_table,
        outcomes=task.results_outcomes,
        conn_id=task.results_conn_id,
        sql_conn_id=task.sql_conn_id,
        log=task.log,
    )


def checked_client(task: SyncTask, *, defer_long_waits: bool) -> Client:
    """The client, after checking the connection: one that can never work fails this try, not every retry."""
    try:
        return task.get_hook().get_client(defer_long_waits=defer_long_waits)
    except ConnectionConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def sync_engine(
    task: SyncTask,
    client: Client,
    folder: FailureFolder,
    try_number: int,
    results: ResultsTable | None,
    *,
    skip_nulls: bool,
) -> SyncEngine:
    """The engine of this try; the source's size (for the ETA) only when the whole source is sent."""
    size = None if task.incremental or task.replay_from else task.source_size()
    return SyncEngine(
        SkippingNulls(client, task.log) if skip_nulls else client,
        folder,
        try_number,
        chunk_size=task.checkpoint_every,
        progress=Progress(task.log, task.progress_interval, size),
        ledger=ReplayLedger(task.replay_from) if task.replay_from else None,
        results=results,
    )


def run_guarded(parts: TryParts, run: Callable[[], TryOutcome]) -> EngineRun:
    """``run`` with the collector frozen, closing the client and the results table whatever happens.

    An error no retry can help is returned, for its report to be pushed before the task fails; a checkpoint or a
    source that cannot be read fails the task at once.
    """
    # Objects alive now (Airflow's imports, the DAG) are moved out of the collector's sight: a sync
    # allocates a few containers per user, and each full collection would re-scan them (measured: half
    # of the client's CPU on a 1M-id mass update).
    gc.collect()
    gc.freeze()
    try:
        if parts.results is not None:
            parts.results.open()  # before the source is read (SQLite: see ResultsTable.open)
        return EngineRun(outcome=run())
    except (FatalVendorError, RemovalLimitExceeded) as exc:  # bad credentials, no route, too many removals:
        return EngineRun(error=str(exc))  # no retry can help
    except (CheckpointError, SourceConfigError) as exc:
        raise AirflowFailException(str(exc)) from None
    finally:
        parts.client.close()
        if parts.results is not None:
            parts.results.close()
        gc.unfreeze()


def run_engine(task: SyncTask, parts: TryParts, context: Any) -> TryOutcome:
    """A dry run; an incremental sync; or a full one (a replay too), continuing the checkpoint of earlier tries."""
    engine = parts.engine
    if parts.read.dry_run:
        return engine.dry_run(source_items(task, ResumePoint()))
    if task.incremental and not task.replay_from:
        return run_incremental_try(task, parts, context)
    return engine.run(checkpoint_store(context, engine.folder.path), functools.partial(source_items, task))


def source_items(task: SyncTask, point: ResumePoint) -> Iterator[Item]:
    """The users from ``point`` on: for a replay, the failure file's transient failures not delivered yet, else
    the operator's source."""
    if task.replay_from:
        delivered = ReplayLedger(task.replay_from).delivered()
        return sources.replay_items([task.replay_from], start=point.offset, exclude=delivered)
    return task.source_items(point)


def run_incremental_try(task: SyncTask, parts: TryParts, context: Any) -> TryOutcome:
    """Send what changed since the state of ``state_key`` (default ``<dag_id>.<task_id>``); a mapped chunk never
    removes users (the other chunks' users are not missing)."""
    ti = context["ti"]
    key = task.state_key or f"{ti.dag_id}.{ti.task_id}"
    diffs_in_warehouse = task.sql and task.diffs_sql_in_warehouse
    state = incremental_state(
        key,
        parts.failure_root,
        warehouse_conn_id=str(task.sql_conn_id) if diffs_in_warehouse else None,
        state_table=task.state_table,
    )
    return run_incremental(
        parts.engine,
        state,
        task.segment(),
        context,
        full_refresh=truthy(task.full_refresh),
        remove_missing=task.remove_missing and parts.map_index < 0,
        log=task.log,
        max_removals=parts.read.removal_limit,
    )


def defer_until(task: SyncTask, until: float, outcome: TryOutcome) -> NoReturn:
    """Hand the wait to the triggerer: the worker slot is freed until the vendor's quota allows more."""
    trigger = quota_trigger(until)
    task.log.info(
        "The vendor's quota asks to wait until %s: deferring (%d users settled so far, the rest resumes then)",
        trigger.moment.isoformat(timespec="seconds"),
        outcome.total,
    )
    task.defer(trigger=trigger, method_name="execute_complete")
