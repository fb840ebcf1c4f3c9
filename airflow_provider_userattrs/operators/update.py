"""``UpdateUserAttributesOperator``: many attributes for each user, from records or a SQL query."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_userattrs.operators.base import UserAttributesSyncOperator
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.incremental import Segment
from airflow_provider_userattrs.sync.sources import Item


class UpdateUserAttributesOperator(UserAttributesSyncOperator):
    """Set each user's attributes at the vendor the connection ``conn_id`` points at.

    :param conn_id: an ``altatech``, ``fyno``, ``dx`` or ``usercom`` connection; its type picks the hook.
    :param records: mappings (a list, or an XComArg of one); ``user_id_field`` names the user, every other
        key is an attribute. Templated.
    :param sql: a query whose rows are the records, run on ``sql_conn_id`` (any Airflow SQL connection),
        streamed ``fetch_size`` rows at a time. Give it an ``ORDER BY``: a retried try skips the rows an
        earlier try settled by counting them. Templated (``.sql`` files too).
    :param user_id_field: the key holding the vendor's user id (AltaTech user_id, Fyno distinct_id, DX
        email, User.com integer id).
    :param attributes: a list restricts the keys sent; a mapping renames them (``{column: attribute}``).
    :param max_failure_ratio: the task fails when the share of failed users exceeds it (default 0).
    :param dry_run: validate and report what would be sent; send nothing.
    :param failure_path: root of the failure files (any ``ObjectStoragePath`` URL; default
        ``$USERATTRS_FAILURE_PATH`` or ``$AIRFLOW_HOME/userattrs/failures``).
    :param replay_from: a failure file of an earlier run: resend its transient failures instead of the source.
    :param checkpoint_every: users per checkpoint; a retried try resends at most this many.
    :param hook_params: overrides of the connection's tuning extras (``concurrency``, ``batch_size``...).
    :param incremental: send only the attributes that changed since the values last delivered by this sync.
        With ``sql`` the state lives in the warehouse (table ``state_table``) and the database computes the
        difference; with ``records`` it lives under ``failure_path`` (``_state/<state_key>.json``).
    :param state_key: the sync's identity in the state (default ``<dag_id>.<task_id>``).
    :param full_refresh: resend everything and rebuild the state. Templated.
    :param remove_missing: users who left the segment get their synced attributes removed (DX ``null``,
        Fyno ``$unset``, User.com cleared; AltaTech cannot remove: reported as skipped). Not for mapped chunks,
        where the other chunks' users are not "missing".
    """

    template_fields: Sequence[str] = (*UserAttributesSyncOperator.template_fields, "records", "user_id_field")
    diffs_sql_in_warehouse = True
    template_fields_renderers = {**UserAttributesSyncOperator.template_fields_renderers, "records": "json"}

    def __init__(
        self,
        *,
        conn_id: str,
        records: Sequence[Mapping[str, Any]] | Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        user_id_field: str = "user_id",
        attributes: Sequence[str] | Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, sql=sql, sql_conn_id=sql_conn_id, **kwargs)
        if records is not None and sql is not None:
            raise ValueError("give records or sql, not both")
        if records is None and sql is None and not kwargs.get("replay_from"):
            raise ValueError("give records, sql or replay_from")
        self.records = records
        self.user_id_field = user_id_field
        self.attributes = attributes

    def source_items(self, start: int) -> Iterator[Item]:
        rows = self._sql_rows() if self.sql else (self.records or [])
        return sources.from_records(rows, self.user_id_field, self.attributes, start)

    def source_size(self) -> int | None:
        return len(self.records) if isinstance(self.records, list) else None

    def segment(self) -> Segment:
        """The records, or the query the warehouse diffs, as the incremental state sees them."""
        rows = self._sql_rows if self.sql else lambda: self.records or []
        return Segment(self.user_id_field, self.attributes, rows, self.sql, self.parameters, self.fetch_size)
