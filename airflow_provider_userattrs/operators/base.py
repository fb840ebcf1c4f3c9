"""What both operators share, and only what is Airflow's: the parameters and their templating, the source each
operator provides, and the entry points Airflow calls (``execute``, ``execute_complete``, OpenLineage).

One try (parameters read, engine set up and run, deferral, report published) is ``sync_try.py``'s; the sync
itself (chunks, checkpoint, counting, failure files, incremental state) is the engine's, in
``airflow_provider_userattrs.sync``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from airflow_provider_userattrs import lineage
from airflow_provider_userattrs.alerts import add_alert_callbacks
from airflow_provider_userattrs.assets import emit_sync_event, with_sync_alias
from airflow_provider_userattrs.compat import BaseOperator
from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.operators.deferrable import resolve_deferrable
from airflow_provider_userattrs.operators.parameters import check_given
from airflow_provider_userattrs.operators.publishing import REPORT_KEY
from airflow_provider_userattrs.operators.sql_query import SqlQuery
from airflow_provider_userattrs.operators.sync_try import run_try
from airflow_provider_userattrs.operators.verdict import FinishedTry
from airflow_provider_userattrs.sync.incremental import STATE_TABLE, Segment
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.report import MAX_REPORTED_FAILURES
from airflow_provider_userattrs.sync.sources import Item

__all__ = ["MAP_INDEX_TEMPLATE", "MAX_REPORTED_FAILURES", "REPORT_KEY", "UserAttributesSyncOperator"]

MAP_INDEX_TEMPLATE = "{{ userattrs_chunk }}"
"""Names each mapped chunk in the UI by its source (set in ``execute``)."""


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
        check_given(self)  # a value given as it is, when the DAG is parsed (parameters.py)

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

    def _query(self) -> SqlQuery:
        """``sql`` on ``sql_conn_id``, as rendered, read ``fetch_size`` rows at a time (``sql_query.py``)."""
        return SqlQuery(self.task_id, self.sql_conn_id, self.sql or "", self.parameters, self.fetch_size)

    def get_hook(self) -> UserAttributesHook:
        """The vendor hook, chosen by the connection's type, with ``hook_params`` (and ``defer_after``) applied."""
        params = dict(self.hook_params)
        if self.defer_after is not None:
            params["defer_after"] = self.defer_after
        return get_hook(self.conn_id, **params)

    # -- execution -----------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        """Sync, push the report (XCom ``report``, also when the task then fails) and judge the run.

        :param context: the task's Airflow context.
        :return: the report (README "The report").
        """
        return self._conclude(context, run_try(self, context, resuming=False))

    def execute_complete(self, context: Any, event: Any = None) -> dict[str, Any]:
        """Resume after a deferral: the sync continues from its checkpoint (what the quota held back first).

        :param context: the task's Airflow context.
        :param event: the ``DateTimeTrigger``'s event (unused: the checkpoint says where to continue).
        :return: the report, as :meth:`execute`.
        """
        return self._conclude(context, run_try(self, context, resuming=True))

    def _conclude(self, context: Any, finished: FinishedTry) -> dict[str, Any]:
        """Judge the try (``verdict.py``); on success, the asset event (none for a dry run: ``assets.py``)."""
        self._userattrs_report = finished.report  # read by the OpenLineage facets and the alert, also on failure
        finished.conclude()
        emit_sync_event(self, context, finished.report)
        return finished.report

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: tables read, vendor dataset written, column lineage (``lineage.py``); None without it."""
        return lineage.facets_on_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage on success: as on start, with the output statistics and the report's counts."""
        return lineage.facets_on_complete(self, task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """OpenLineage on failure: as on complete, with the error and the counts of the report pushed."""
        return lineage.facets_on_failure(self, task_instance)
