"""``UpdateUserAttributesOperator``: many attributes for each user, from records or a SQL query."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_userattrs.attribute_sources import AttributeSources
from airflow_provider_userattrs.operators.base import UserAttributesSyncOperator
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.incremental import Segment
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.sources import Item

log = logging.getLogger(__name__)


class UpdateUserAttributesOperator(UserAttributesSyncOperator):
    """Set each user's attributes at the vendor the connection ``conn_id`` points at.

    :param conn_id: an ``altatech``, ``fyno``, ``dx`` or ``usercom`` connection; its type picks the hook.
        Templated.
    :param records: mappings (a list, or an XComArg of one); ``user_id_field`` names the user, every other
        key is an attribute. Templated.
    :param sql: a query whose rows are the records, run on ``sql_conn_id`` (any Airflow SQL connection),
        streamed ``fetch_size`` rows at a time in ``user_id_field`` order (the query is wrapped as a subquery:
        no ``ORDER BY`` needed; a retried try continues after the last user id settled). Templated (``.sql``
        files too).
    :param sql_conn_id: the Airflow SQL connection ``sql`` runs on. Templated.
    :param user_id_field: the key holding the vendor's user id (AltaTech user_id, Fyno distinct_id, DX
        email, User.com integer id). Templated.
    :param attributes: a list restricts the keys sent; a mapping renames them (``{column: attribute}``).
    :param kwargs: every parameter of :class:`UserAttributesSyncOperator` (``parameters``,
        ``max_failure_ratio``, ``dry_run``, ``failure_path``, ``replay_from``, ``checkpoint_every``,
        ``fetch_size``, ``progress_interval``, ``hook_params``, ``incremental``, ``state_key``,
        ``full_refresh``, ``remove_missing``, ``state_table``, ``null_values``, ``max_removals``) and of
        ``BaseOperator``. With ``incremental`` and ``sql`` the state lives in the warehouse (table
        ``state_table``) and the database computes the difference (and counts the removals of
        ``max_removals``); with ``records`` it lives under ``failure_path`` (``_state/<state_key>.json``).
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

    def source_items(self, point: ResumePoint) -> Iterator[Item]:
        """The records from position ``point.offset`` on, or the query's rows after its last settled user id,
        as updates.

        :param point: what earlier tries settled.
        """
        if not self.sql:
            return sources.from_records(self.records or [], self.user_id_field, self.attributes, point.offset)
        rows = self._query().keyed_rows(self.user_id_field, point)
        return sources.from_records(rows, self.user_id_field, self.attributes, point.offset, skip=False)

    def source_size(self) -> int | None:
        """The number of records when they are a list (a query's size is not known before reading it)."""
        return len(self.records) if isinstance(self.records, list) else None

    def segment(self) -> Segment:
        """The records, or the query the warehouse diffs, as the incremental state sees them."""
        rows = self._query().rows if self.sql else lambda: self.records or []
        return Segment(
            self.user_id_field,
            self.attributes,
            rows,
            self.sql,
            self.parameters,
            self.fetch_size,
            skip_nulls=self.null_values == "skip",
        )

    def attribute_sources(self, *, query_columns: bool = False) -> AttributeSources:
        """The attributes sent and the column each comes from (OpenLineage, the asset event): ``attributes``
        when given, else every key of the records but ``user_id_field``, or every column of the query.

        :param query_columns: ask the warehouse for the query's columns (no row is read); set once the sync
            ran, never while a task starts.
        """
        attributes = self.attributes
        if isinstance(attributes, Mapping):
            return AttributeSources(columns={str(a): str(c) for c, a in attributes.items()})
        if isinstance(attributes, Sequence) and not isinstance(attributes, str):
            return AttributeSources(columns={str(a): str(a) for a in attributes})
        if self.sql and self.sql_conn_id and query_columns:
            names = _query_column_names(str(self.sql_conn_id), str(self.sql), self.parameters)
        elif isinstance(self.records, list):
            names = _record_keys(self.records)
        else:
            names = []
        user_id_field = str(self.user_id_field)
        return AttributeSources(columns={n: n for n in names if n != user_id_field})


def _record_keys(records: Sequence[Any]) -> list[str]:
    keys: dict[str, None] = {}
    for record in records:
        if isinstance(record, Mapping):
            keys.update(dict.fromkeys(str(k) for k in record))
    return list(keys)


def _query_column_names(sql_conn_id: str, sql: str, parameters: Any = None) -> list[str]:
    """The columns ``sql`` returns, asked of the warehouse without reading a row; [] when it cannot tell.

    Used once a sync has succeeded: a failure here must not turn a delivered sync into a failed task.
    """
    try:
        return sources.query_columns(sources.sql_hook(sql_conn_id), sql, parameters)
    except Exception as exc:  # any driver's error: the names are informative, the sync is done
        log.warning("Could not read the column names of the sync's query (%s): %s", type(exc).__name__, exc)
        return []
