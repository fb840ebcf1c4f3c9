"""What both operators share, and only what is Airflow's: parameters, templating, the connection check,
building the sync engine, the report and the task's verdict.

The sync itself (chunks, checkpoint, counting, failure files, incremental state) is the engine's, in
``airflow_provider_userattrs.sync``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_userattrs import lineage
from airflow_provider_userattrs.assets import emit_sync_event, with_sync_alias
from airflow_provider_userattrs.config import truthy
from airflow_provider_userattrs.errors import ConnectionConfigError, SourceConfigError
from airflow_provider_userattrs.hooks import VendorAuthError, get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.checkpoint import CheckpointError, checkpoint_store
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import (
    STATE_TABLE,
    IncrementalState,
    ObjectState,
    Segment,
    WarehouseState,
)
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.progress import Progress
from airflow_provider_userattrs.sync.report import MAX_REPORTED_FAILURES, TryOutcome, build_report
from airflow_provider_userattrs.sync.sources import Item
from airflow_provider_userattrs.sync.storage import FailureFolder, ReplayLedger, default_failure_root, task_folder

__all__ = ["MAP_INDEX_TEMPLATE", "MAX_REPORTED_FAILURES", "REPORT_KEY", "UserAttributesSyncOperator"]

MAP_INDEX_TEMPLATE = "{{ userattrs_chunk }}"
"""Names each mapped chunk in the UI by its source (set in ``execute``)."""
REPORT_KEY = "report"


class UserAttributesSyncOperator(BaseOperator):
    """Base of :class:`UpdateUserAttributesOperator` and :class:`MassUpdateOperator`; not used directly.

    :param conn_id: an ``altatech``, ``fyno``, ``dx`` or ``usercom`` connection; its type picks the hook.
        Templated.
    :param sql: a query whose rows are the users, run on ``sql_conn_id`` and streamed ``fetch_size`` rows at
        a time, in user-id order: a retried try continues after the last user id an earlier try settled, so
        the query needs no ``ORDER BY`` of its own. Templated (``.sql`` files too).
    :param sql_conn_id: any Airflow SQL connection (common-sql: SQLite, PostgreSQL, ...). Templated.
    :param parameters: bind parameters of ``sql``. Templated.
    :param max_failure_ratio: the task fails (without retry) when the share of failed users exceeds it;
        between 0 and 1, default 0. Templated.
    :param dry_run: validate and report what would be sent; send nothing. Templated.
    :param failure_path: root of the failure files (any ``ObjectStoragePath`` URL; default
        ``$USERATTRS_FAILURE_PATH`` or ``$AIRFLOW_HOME/userattrs/failures``). Templated.
    :param replay_from: a failure file of an earlier run: resend its transient failures instead of the
        source; what it delivers is recorded beside the file, so a second replay sends nothing again.
        Templated.
    :param checkpoint_every: users per chunk and checkpoint; a retried try resends at most this many.
    :param fetch_size: SQL rows per fetch.
    :param progress_interval: seconds between progress lines in the task log.
    :param hook_params: overrides of the connection's tuning extras (``concurrency``, ``batch_size``...);
        an unknown name fails the task.
    :param incremental: send only the attributes that changed since the values this sync last delivered.
    :param state_key: the sync's identity in the incremental state (default ``<dag_id>.<task_id>``).
        Templated.
    :param full_refresh: with ``incremental``, resend everything and rebuild the state. Templated.
    :param remove_missing: with ``incremental``, users who left the segment get their synced attributes
        removed where the vendor can. Off in mapped chunks, where other chunks' users are not "missing".
    :param state_table: the warehouse table of the incremental state of a SQL source.
    :param defer_after: a wait for the vendor's quota longer than this many seconds defers the task: its
        checkpoint is saved, the triggerer holds the wait (a ``DateTimeTrigger``, no worker slot), and the
        task resumes where it stopped, as many times as needed. Default: the connection's ``defer_after``
        extra (60 s). Users held back meanwhile are sent after the wait, never reported failed for it.
    :param kwargs: the arguments of ``BaseOperator`` (``task_id``, ``retries``...); ``map_index_template``
        defaults to the chunk's source and size.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "sql",
        "sql_conn_id",
        "parameters",
        "failure_path",
        "replay_from",
        "max_failure_ratio",
        "is_dry_run",
        "state_key",
        "full_refresh",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    diffs_sql_in_warehouse: ClassVar[bool] = False
    """Whether an incremental sync of a SQL source is diffed by the warehouse (else in object storage)."""
    ui_color = "#dff0ea"
    ui_fgcolor = "#1b4332"

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        max_failure_ratio: float | str = 0.0,
        dry_run: bool | str = False,
        failure_path: str | None = None,
        replay_from: str | None = None,
        checkpoint_every: int = 2000,
        fetch_size: int = 10_000,
        progress_interval: float = 30.0,
        hook_params: Mapping[str, Any] | None = None,
        incremental: bool = False,
        state_key: str | None = None,
        full_refresh: bool | str = False,
        remove_missing: bool = True,
        state_table: str = STATE_TABLE,
        defer_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        kwargs["outlets"] = with_sync_alias(kwargs.get("outlets"))  # the asset event's way out (assets.py)
        super().__init__(**kwargs)
        # Nothing here touches a connection or a database: DAG parsing stays fast.
        self.conn_id = conn_id
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.max_failure_ratio = max_failure_ratio
        # Not `self.dry_run`: BaseOperator already has a dry_run() method (it logs the rendered templates).
        self.is_dry_run = dry_run
        self.failure_path = failure_path
        self.replay_from = replay_from
        self.checkpoint_every = checkpoint_every
        self.fetch_size = fetch_size
        self.progress_interval = progress_interval
        self.hook_params = dict(hook_params or {})
        self.incremental = incremental
        self.state_key = state_key
        self.full_refresh = full_refresh
        self.remove_missing = remove_missing
        self.state_table = state_table
        self.defer_after = defer_after
        self._mapped_index: int | None = None
        if not isinstance(max_failure_ratio, str):
            _ratio(max_failure_ratio)  # a templated value is checked once rendered
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """As ``BaseOperator.partial``, with the chunk label as the default ``map_index_template``."""
        from airflow.sdk.bases import operator as sdk_operator

        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        kwargs["outlets"] = with_sync_alias(kwargs.get("outlets"))
        return sdk_operator.partial(cls, **kwargs)

    # -- to be provided by the two operators ------------------------------------------------------

    def source_items(self, point: ResumePoint) -> Iterator[Item]:
        """The users to sync, from ``point`` on.

        :param point: what earlier tries settled of the source (they are skipped): a list continues at its
            ``offset``, a query after its last settled user id (``sync/keyset.py``).
        """
        raise NotImplementedError

    def source_size(self) -> int | None:
        """How many users the source holds, when known without reading it (for the ETA)."""
        return None

    def segment(self) -> Segment:
        """Incremental sync: the source as the incremental state sees it."""
        raise NotImplementedError(f"{type(self).__name__} has no incremental mode")

    def source_label(self) -> str:
        """The chunk's name in the UI (``map_index_template``) and in the log."""
        return f"sql on {self.sql_conn_id}" if self.sql else "records"

    # -- shared helpers ------------------------------------------------------------------------------

    def _sql_rows(self) -> Iterator[sources.Row]:
        return sources.stream_sql(self._sql_conn_id(), self.sql or "", self.parameters, self.fetch_size)

    def _keyed_sql_rows(self, key_column: str | None, point: ResumePoint) -> Iterator[sources.Row]:
        """The query's rows in order of ``key_column`` (None: its first column) from ``point`` on."""
        _, rows = sources.keyed_rows(
            self._sql_conn_id(), self.sql or "", self.parameters, key_column, point, self.fetch_size
        )
        return rows

    def _sql_conn_id(self) -> str:
        if not self.sql_conn_id:
            raise AirflowFailException(f"{self.task_id}: sql needs sql_conn_id (an Airflow SQL connection)")
        return self.sql_conn_id

    def get_hook(self) -> UserAttributesHook:
        """The vendor hook, chosen by the connection's type, with ``hook_params`` (and ``defer_after``) applied."""
        params = dict(self.hook_params)
        if self.defer_after is not None:
            params["defer_after"] = self.defer_after
        return get_hook(self.conn_id, **params)

    def _is_mapped_chunk(self) -> bool:
        return self._mapped_index is not None and self._mapped_index >= 0

    # -- execution -----------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        """Sync, push the report (XCom ``report``, also when the task then fails) and judge the run.

        :param context: the task's Airflow context.
        :return: the report (README "The report").
        """
        started = time.monotonic()
        ti = context["ti"]
        self.max_failure_ratio = _ratio(self.max_failure_ratio)
        self.is_dry_run = truthy(self.is_dry_run)
        map_index = getattr(ti, "map_index", None)
        self._mapped_index = int(map_index) if map_index is not None else -1
        context["userattrs_chunk"] = self._chunk_label()
        hook = self._checked_hook()
        root = self.failure_path or default_failure_root()
        folder = self._failure_folder(ti, root, self._mapped_index)
        engine = self._engine(hook, folder, int(getattr(ti, "try_number", 1) or 1))
        outcome, error = None, None
        # Objects alive now (Airflow's imports, the DAG) are moved out of the collector's sight: a sync
        # allocates a few containers per user, and each full collection would re-scan them (measured: half
        # of the client's CPU on a 1M-id mass update).
        gc.collect()
        gc.freeze()
        hook.defer_long_waits = not self.is_dry_run  # a long wait for the quota defers the task (below)
        try:
            outcome = self._run(engine, context, root)
        except VendorAuthError as exc:
            error = str(exc)
        except (CheckpointError, SourceConfigError) as exc:
            raise AirflowFailException(str(exc)) from None
        finally:
            hook.close()
            gc.unfreeze()
        if outcome is not None and outcome.paused and hook.postponed_until is not None:
            self._defer_until(hook.postponed_until, outcome)
        report = self._report(hook.vendor, outcome, time.monotonic() - started, error)
        ti.xcom_push(key=REPORT_KEY, value=report)
        self._userattrs_report = report  # read by the OpenLineage facets (lineage.py), also on failure
        if error is not None:
            raise AirflowFailException(error)
        self._judge(report, ti)
        emit_sync_event(self, context, report)  # on success only; none for a dry run (assets.py)
        return report

    def execute_complete(self, context: Any, event: Any = None) -> dict[str, Any]:
        """Resume after a deferral: the sync continues from its checkpoint (what the quota held back first).

        :param context: the task's Airflow context.
        :param event: the ``DateTimeTrigger``'s event (unused: the checkpoint says where to continue).
        :return: the report, as :meth:`execute`.
        """
        return self.execute(context)

    def _defer_until(self, until: float, outcome: TryOutcome) -> None:
        """Hand the wait to the triggerer: the worker slot is freed until the vendor's quota allows more."""
        from datetime import UTC, datetime

        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = datetime.fromtimestamp(until, tz=UTC)
        self.log.info(
            "The vendor's quota asks to wait until %s: deferring (%d users settled so far, the rest resumes then)",
            moment.isoformat(timespec="seconds"),
            outcome.total,
        )
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: tables read, vendor dataset written, column lineage (``lineage.py``); None without it."""
        return lineage.facets_on_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage on success: as on start, with the output statistics and the report's counts."""
        return lineage.facets_on_complete(self, task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """OpenLineage on failure: as on complete, with the error and the counts of the report pushed."""
        return lineage.facets_on_failure(self, task_instance)

    def _failure_folder(self, ti: Any, root: str, map_index: int) -> FailureFolder:
        """``<root>/<dag>/<run>/<task>[/map-<i>]``, and its ``replay`` subfolder for a replay."""
        folder = task_folder(root, ti.dag_id, ti.run_id, ti.task_id, map_index)
        return FailureFolder(folder / "replay" if self.replay_from else folder)

    def _report(self, vendor: str, outcome: TryOutcome | None, seconds: float, error: str | None) -> dict[str, Any]:
        return build_report(
            vendor=vendor,
            conn_id=self.conn_id,
            dry_run=bool(self.is_dry_run),
            outcome=outcome,
            duration_seconds=seconds,
            error=error,
        )

    def _checked_hook(self) -> UserAttributesHook:
        """The hook, after checking the connection: one that can never work fails this try, not every retry."""
        try:
            hook = self.get_hook()
            hook.check_config()
        except ConnectionConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        return hook

    def _engine(self, hook: UserAttributesHook, folder: FailureFolder, try_number: int) -> SyncEngine:
        size = None if self.incremental or self.replay_from else self.source_size()
        return SyncEngine(
            hook,
            folder,
            try_number,
            chunk_size=self.checkpoint_every,
            progress=Progress(self.log, self.progress_interval, size),
            ledger=ReplayLedger(self.replay_from) if self.replay_from else None,
            should_pause=lambda: hook.postponed_until is not None,
        )

    def _run(self, engine: SyncEngine, context: Any, root: str) -> TryOutcome:
        if self.is_dry_run:
            return engine.dry_run(self._items(ResumePoint()))
        if self.incremental and not self.replay_from:
            return self._run_incremental(engine, context, root)
        return engine.run(checkpoint_store(context, engine.folder.path), self._items)

    def _items(self, point: ResumePoint) -> Iterator[Item]:
        if self.replay_from:
            delivered = ReplayLedger(self.replay_from).delivered()
            return sources.replay_items([self.replay_from], start=point.offset, exclude=delivered)
        return self.source_items(point)

    def _run_incremental(self, engine: SyncEngine, context: Any, root: str) -> TryOutcome:
        ti = context["ti"]
        key = self.state_key or f"{ti.dag_id}.{ti.task_id}"
        full_refresh = truthy(self.full_refresh)
        with self._incremental_state(key, root) as state:
            self.log.info(
                "Incremental sync %r (state: %s)%s", key, state.where, ", full refresh" if full_refresh else ""
            )
            remove = self.remove_missing and not self._is_mapped_chunk()
            return engine.run_incremental(
                state,
                self.segment(),
                full_refresh=full_refresh,
                remove_missing=remove,
                checkpoint=checkpoint_store(context, engine.folder.path),
            )

    def _incremental_state(self, key: str, root: str) -> IncrementalState:
        """The warehouse table for a SQL source the warehouse can diff, else a document in object storage."""
        if self.sql and self.diffs_sql_in_warehouse:
            return WarehouseState(str(self.sql_conn_id), key, self.state_table)
        return ObjectState(root, key)

    def _judge(self, report: Mapping[str, Any], ti: Any) -> None:
        """Fail the task when the run is not clean enough; transient failures get Airflow's retries."""
        total, failed = report["total"], report["failed"]
        retries_left = int(getattr(ti, "try_number", 1) or 1) <= int(self.retries or 0)
        if report.get("retryable_users") and retries_left:
            raise AirflowException(
                f"{report['retryable_users']} users failed transiently after the HTTP retries; the next try "
                f"resends only them (failures: {report.get('failure_file')})"
            )
        ratio, limit = (failed / total if total else 0.0), _ratio(self.max_failure_ratio)
        if ratio > limit:
            raise AirflowFailException(
                f"{failed} of {total} users failed ({ratio:.2%} > max_failure_ratio {limit:.2%}); "
                f"every failure with its reason: {report.get('failure_file')}"
            )

    def _chunk_label(self) -> str:
        size = self.source_size()
        return f"{self.source_label()} ({size} users)" if size is not None else self.source_label()


def _ratio(value: Any) -> float:
    ratio = float(value)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"max_failure_ratio must be between 0 and 1, got {value!r}")
    return ratio
