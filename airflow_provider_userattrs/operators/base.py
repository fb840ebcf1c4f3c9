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

from airflow_provider_userattrs import lineage, metrics
from airflow_provider_userattrs.alerts import add_alert_callbacks
from airflow_provider_userattrs.assets import emit_sync_event, with_sync_alias
from airflow_provider_userattrs.client import Client
from airflow_provider_userattrs.compat import AirflowFailException, BaseOperator
from airflow_provider_userattrs.config import truthy
from airflow_provider_userattrs.degraded import DegradedRules
from airflow_provider_userattrs.degraded import degraded_after as parse_degraded_after
from airflow_provider_userattrs.degraded import degraded_failure_ratio as parse_degraded_failure_ratio
from airflow_provider_userattrs.errors import ConnectionConfigError, FatalVendorError, SourceConfigError
from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.operators.deferrable import resolve_deferrable
from airflow_provider_userattrs.operators.running import (
    failure_folder,
    incremental_state,
    quota_trigger,
    run_incremental,
)
from airflow_provider_userattrs.operators.safety import checked_now, null_values_mode, removal_limit
from airflow_provider_userattrs.operators.verdict import judge, ratio
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.checkpoint import CheckpointError, checkpoint_store
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import (
    STATE_TABLE,
    RemovalLimit,
    RemovalLimitExceeded,
    Segment,
)
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.nulls import SkippingNulls
from airflow_provider_userattrs.sync.progress import Progress
from airflow_provider_userattrs.sync.report import MAX_REPORTED_FAILURES, TryOutcome, build_report
from airflow_provider_userattrs.sync.results_table import (
    ResultsTable,
    check_results_table,
    results_connection,
    results_outcomes_mode,
    results_table_of_try,
)
from airflow_provider_userattrs.sync.sources import Item
from airflow_provider_userattrs.sync.storage import FailureFolder, ReplayLedger, default_failure_root

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
    :param null_values: what a NULL value does: ``"clear"`` (default) sends it as the vendor's removal (DX
        ``null``, Fyno ``$unset``, User.com cleared; AltaTech cannot remove and reports it skipped); ``"skip"``
        never sends it: the attribute is left out of that user's update and counted in the report's
        ``skipped_attributes`` (a user whose attributes were all NULL is counted once, succeeded), and with
        ``incremental`` the state keeps the value last delivered. A user who left the segment is still removed
        (``remove_missing``). Templated; any other value fails the task at once.
    :param max_removals: with ``incremental``, the most one run may remove; more fails the task before
        anything is sent (``AirflowFailException``, no retry), naming the numbers. A number of 1 or more is a
        count (a whole number: at most that many attributes cleared, and at most that many users removed);
        a number between 0 and 1 a ratio of what the state holds (of the attributes, and of the users, this
        sync has delivered); 0 allows none; None (default) no limit. Recommended: 0.05 for a daily sync.
        Templated.
    :param state_table: the warehouse table of the incremental state of a SQL source.
    :param defer_after: a wait for the vendor's quota longer than this many seconds defers the task: its
        checkpoint is saved, the triggerer holds the wait (a ``DateTimeTrigger``, no worker slot), and the
        task resumes where it stopped, as many times as needed. Default: the connection's ``defer_after``
        extra (60 s). Users held back meanwhile are sent after the wait, never reported failed for it.
    :param deferrable: whether a wait for the vendor's quota longer than ``defer_after`` is handed to the
        triggerer (True) or slept by the worker (False). Default None: ``[operators] default_deferrable`` when
        the deployment set it, else True; unlike most operators', since a quota wait can last an hour
        (``operators/deferrable.py``).
    :param results_table: a warehouse table (``[schema.]table``, e.g. ``"userattrs_sync_results"``, created on
        first use) that gets one row per (task instance, try, user, attribute) with its outcome, reason,
        ``retryable`` and time, never the value (it may be personal data), written chunk by chunk. Default None:
        no table. Templated.
    :param results_outcomes: which outcomes ``results_table`` gets: ``"failures"`` (default: the rejected and
        failed attributes, and, on a later try, what became of them) or ``"all"`` (every outcome, delivered
        included). Templated; any other value fails the task at once.
    :param results_conn_id: the SQL connection of ``results_table``; default ``sql_conn_id``. A sync of
        ``records`` or ``user_ids`` has none: it must be set there (the DAG fails to parse otherwise). Templated.
    :param degraded_failure_ratio: a successful sync is *degraded* (it stays a success; the report's
        ``degraded`` list says why, the UI marks it, ``alert`` sends) when the share of failed users exceeds it;
        default 0.0: any failed user. At or above ``max_failure_ratio`` it never marks a run (the task fails
        first); None turns the rule off. Templated.
    :param degraded_when_empty: degraded when the source gave no user (not for an incremental sync with nothing
        changed, nor a replay with nothing left to resend). Default True.
    :param degraded_when_postponed: degraded when the vendor's quota postponed users (the task was deferred at
        least once). Default True.
    :param degraded_after: degraded when the sync took longer than this many seconds, first start to end, quota
        waits included (the report's ``wall_seconds``). Default None: no limit. Templated.
    :param alert: a notifier (``SmtpNotifier(to=...)``, a Slack or Teams notifier, any ``BaseNotifier``) that
        gets a message with the report when the task fails or succeeds degraded: registered as both
        ``on_success_callback`` and ``on_failure_callback`` (after any given) inside a
        :class:`~airflow_provider_userattrs.alerts.SyncAlert` (pass one to tune it). Default None.
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
        "null_values",
        "max_removals",
        "results_table",
        "results_outcomes",
        "results_conn_id",
        "degraded_failure_ratio",
        "degraded_after",
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
        deferrable: bool | None = None,
        null_values: str = "clear",
        max_removals: float | str | None = None,
        results_table: str | None = None,
        results_outcomes: str = "failures",
        results_conn_id: str | None = None,
        degraded_failure_ratio: float | str | None = 0.0,
        degraded_when_empty: bool = True,
        degraded_when_postponed: bool = True,
        degraded_after: float | str | None = None,
        alert: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        kwargs["outlets"] = with_sync_alias(kwargs.get("outlets"))  # the asset event's way out (assets.py)
        self.alert = add_alert_callbacks(kwargs, alert)  # on_success/on_failure_callback (alerts.py)
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
        self.deferrable = resolve_deferrable(deferrable)
        self.null_values = null_values
        self.max_removals = max_removals
        self.results_table = results_table
        self.results_outcomes = results_outcomes
        self.results_conn_id = results_conn_id
        self.degraded_failure_ratio = degraded_failure_ratio
        self.degraded_when_empty = degraded_when_empty
        self.degraded_when_postponed = degraded_when_postponed
        self.degraded_after = degraded_after
        self._removal_limit: RemovalLimit | None = None
        self._mapped_index: int | None = None
        if not isinstance(max_failure_ratio, str):
            ratio(max_failure_ratio)  # a templated value is checked once rendered
        if checked_now(null_values):
            null_values_mode(null_values)
        if checked_now(max_removals):
            removal_limit(max_removals, incremental=incremental)
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if checked_now(results_outcomes):
            results_outcomes_mode(results_outcomes)
        if results_table and checked_now(results_table):
            check_results_table(results_table)
        results_connection(results_table, results_conn_id, sql_conn_id)
        if checked_now(degraded_failure_ratio):
            parse_degraded_failure_ratio(degraded_failure_ratio)
        if checked_now(degraded_after):
            parse_degraded_after(degraded_after)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """As ``BaseOperator.partial``, with the chunk label as the default ``map_index_template``."""
        from airflow.sdk.bases import operator as sdk_operator

        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        kwargs["outlets"] = with_sync_alias(kwargs.get("outlets"))
        add_alert_callbacks(kwargs, kwargs.pop("alert", None))  # every chunk's callbacks (alerts.py)
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
        self.max_failure_ratio = ratio(self.max_failure_ratio)
        self.is_dry_run = truthy(self.is_dry_run)
        self.null_values = null_values_mode(self.null_values)
        self._removal_limit = removal_limit(self.max_removals, incremental=self.incremental)
        degraded = self._degraded_rules()
        map_index = getattr(ti, "map_index", None)
        self._mapped_index = int(map_index) if map_index is not None else -1
        context["userattrs_chunk"] = self._chunk_label()
        results = None if self.is_dry_run else self._results_table(ti)
        # A long wait for the vendor's quota defers the task (below): the client says so on its results.
        # Not deferrable: the client sleeps the wait in this worker.
        client = self._checked_client(defer_long_waits=self.deferrable and not self.is_dry_run)
        root = self.failure_path or default_failure_root()
        folder = failure_folder(ti, root, self._mapped_index, replaying=bool(self.replay_from))
        engine = self._engine(client, folder, int(getattr(ti, "try_number", 1) or 1), results)
        self._try_baseline = self._metrics_baseline(context, engine.folder.path)  # before the engine runs
        outcome, error = None, None
        # Objects alive now (Airflow's imports, the DAG) are moved out of the collector's sight: a sync
        # allocates a few containers per user, and each full collection would re-scan them (measured: half
        # of the client's CPU on a 1M-id mass update).
        gc.collect()
        gc.freeze()
        try:
            if results is not None:
                results.open()  # before the source is read (SQLite: see ResultsTable.open)
            outcome = self._run(engine, context, root)
        except (FatalVendorError, RemovalLimitExceeded) as exc:  # bad credentials, no route, too many removals:
            error = str(exc)  # no retry can help
        except (CheckpointError, SourceConfigError) as exc:
            raise AirflowFailException(str(exc)) from None
        finally:
            client.close()
            if results is not None:
                results.close()
            gc.unfreeze()
        if outcome is not None and outcome.paused and outcome.resume_at is not None:
            metrics.carry_baseline(ti, self._try_baseline)
            self._defer_until(outcome.resume_at, outcome)
        report = build_report(
            vendor=client.vendor_name,
            conn_id=self.conn_id,
            dry_run=bool(self.is_dry_run),
            outcome=outcome,
            duration_seconds=time.monotonic() - started,
            error=error,
            degraded=degraded,
        )
        ti.xcom_push(key=REPORT_KEY, value=report)
        if self._try_baseline is not None:
            metrics.emit(report, self._try_baseline)  # once per try, also when it fails (metrics.py)
        self._userattrs_report = report  # read by the OpenLineage facets (lineage.py), also on failure
        if error is not None:
            raise AirflowFailException(error)
        judge(
            report,
            try_number=int(getattr(ti, "try_number", 1) or 1),
            retries=int(self.retries or 0),
            max_failure_ratio=ratio(self.max_failure_ratio),
        )
        emit_sync_event(self, context, report)  # on success only; none for a dry run (assets.py)
        return report

    def execute_complete(self, context: Any, event: Any = None) -> dict[str, Any]:
        """Resume after a deferral: the sync continues from its checkpoint (what the quota held back first).

        :param context: the task's Airflow context.
        :param event: the ``DateTimeTrigger``'s event (unused: the checkpoint says where to continue).
        :return: the report, as :meth:`execute`.
        """
        self._resuming = True  # the metrics' baseline is the one carried through the deferral (metrics.py)
        return self.execute(context)

    def _defer_until(self, until: float, outcome: TryOutcome) -> None:
        """Hand the wait to the triggerer: the worker slot is freed until the vendor's quota allows more."""
        trigger = quota_trigger(until)
        self.log.info(
            "The vendor's quota asks to wait until %s: deferring (%d users settled so far, the rest resumes then)",
            trigger.moment.isoformat(timespec="seconds"),
            outcome.total,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def _metrics_baseline(self, context: Any, folder: Any) -> metrics.Counts | None:
        """The counts this try started from (``metrics.py``): carried through a deferral, else read now; None
        when no metrics go out (none enabled, or a dry run)."""
        if self.is_dry_run or not metrics.metrics_enabled():
            return None
        if getattr(self, "_resuming", False) and (carried := metrics.carried_baseline(context["ti"])):
            return carried
        continues = not (self.incremental and not self.replay_from)  # an incremental try starts from zero
        return metrics.try_baseline(context, folder, continues_checkpoint=continues)

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: tables read, vendor dataset written, column lineage (``lineage.py``); None without it."""
        return lineage.facets_on_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage on success: as on start, with the output statistics and the report's counts."""
        return lineage.facets_on_complete(self, task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """OpenLineage on failure: as on complete, with the error and the counts of the report pushed."""
        return lineage.facets_on_failure(self, task_instance)

    def _degraded_rules(self) -> DegradedRules:
        """When this run is degraded (``degraded.py``), from the rendered parameters."""
        try:
            failure_ratio = parse_degraded_failure_ratio(self.degraded_failure_ratio)
            after = parse_degraded_after(self.degraded_after)
        except ValueError as exc:
            raise AirflowFailException(f"{self.task_id}: {exc}") from None
        return DegradedRules(
            failure_ratio=failure_ratio,
            when_empty=bool(self.degraded_when_empty),
            when_postponed=bool(self.degraded_when_postponed),
            after_seconds=after,
            incremental=bool(self.incremental),
            replay=bool(self.replay_from),
        )

    def _checked_client(self, *, defer_long_waits: bool) -> Client:
        """The client, after checking the connection: one that can never work fails this try, not every retry."""
        try:
            return self.get_hook().get_client(defer_long_waits=defer_long_waits)
        except ConnectionConfigError as exc:
            raise AirflowFailException(str(exc)) from None

    def _results_table(self, ti: Any) -> ResultsTable | None:
        """This try's results table (``results_table``, ``sync/results_table.py``), or None."""
        return results_table_of_try(
            ti,
            int(self._mapped_index if self._mapped_index is not None else -1),
            table=self.results_table,
            outcomes=self.results_outcomes,
            conn_id=self.results_conn_id,
            sql_conn_id=self.sql_conn_id,
            log=self.log,
        )

    def _engine(
        self, client: Client, folder: FailureFolder, try_number: int, results: ResultsTable | None = None
    ) -> SyncEngine:
        size = None if self.incremental or self.replay_from else self.source_size()
        return SyncEngine(
            SkippingNulls(client, self.log) if self.null_values == "skip" else client,
            folder,
            try_number,
            chunk_size=self.checkpoint_every,
            progress=Progress(self.log, self.progress_interval, size),
            ledger=ReplayLedger(self.replay_from) if self.replay_from else None,
            results=results,
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
        diffs_in_warehouse = self.sql and self.diffs_sql_in_warehouse
        state = incremental_state(
            key,
            root,
            warehouse_conn_id=str(self.sql_conn_id) if diffs_in_warehouse else None,
            state_table=self.state_table,
        )
        return run_incremental(
            engine,
            state,
            self.segment(),
            context,
            full_refresh=truthy(self.full_refresh),
            remove_missing=self.remove_missing and not self._is_mapped_chunk(),
            log=self.log,
            max_removals=self._removal_limit,
        )

    def _chunk_label(self) -> str:
        size = self.source_size()
        return f"{self.source_label()} ({size} users)" if size is not None else self.source_label()
