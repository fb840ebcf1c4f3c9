"""``MassUpdateOperator``: one attribute set to one value for many users."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_userattrs.attribute_sources import AttributeSources
from airflow_provider_userattrs.operators.base import UserAttributesSyncOperator
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.incremental import Segment
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.sources import Item


class MassUpdateOperator(UserAttributesSyncOperator):
    """Set ``attribute`` to ``value`` for every user in ``user_ids`` (or the first column of ``sql``).

    User.com gets one mass-update call per chunk of ids, Fyno its batch endpoint, the other vendors one
    call per user.

    :param conn_id: an ``altatech``, ``fyno``, ``dx`` or ``usercom`` connection; its type picks the hook.
        Templated.
    :param attribute: the attribute to set. Templated.
    :param value: the value every user gets. Templated.
    :param user_ids: the users (a list, or an XComArg of one). Templated.
    :param sql: a query whose first column is the user id, run on ``sql_conn_id``, streamed in id order (no
        ``ORDER BY`` needed: a retried try continues after the last id settled). Templated (``.sql`` files too).
    :param sql_conn_id: the Airflow SQL connection ``sql`` runs on. Templated.
    :param kwargs: every parameter of :class:`UserAttributesSyncOperator` (``max_failure_ratio``,
        ``dry_run``, ``failure_path``, ``replay_from``, ``checkpoint_every``, ``hook_params``,
        ``incremental``, ``null_values``, ``max_removals``...) and of ``BaseOperator``. With ``incremental``
        only users whose last delivered ``value`` differs are sent, whatever the source the state is a
        document under ``failure_path``, and users who left the segment get ``attribute`` removed. With
        ``null_values="skip"`` a ``value`` of None is sent to nobody (every user is counted, its attribute
        skipped).
    """

    template_fields: Sequence[str] = (*UserAttributesSyncOperator.template_fields, "attribute", "value", "user_ids")

    def __init__(
        self,
        *,
        conn_id: str,
        attribute: str,
        value: Any,
        user_ids: Sequence[Any] | Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, sql=sql, sql_conn_id=sql_conn_id, **kwargs)
        if user_ids is not None and sql is not None:
            raise ValueError("give user_ids or sql, not both")
        if user_ids is None and sql is None and not kwargs.get("replay_from"):
            raise ValueError("give user_ids, sql or replay_from")
        self.attribute = attribute
        self.value = value
        self.user_ids = user_ids

    def source_items(self, point: ResumePoint) -> Iterator[Item]:
        """One update per id: the list's from position ``point.offset`` on, the query's after its last settled id.

        :param point: what earlier tries settled.
        """
        if not self.sql:
            return sources.from_user_ids(self.user_ids or [], self.attribute, self.value, point.offset)
        rows = self._query().keyed_rows(None, point)
        return sources.from_user_ids(rows, self.attribute, self.value, point.offset, skip=False)

    def source_size(self) -> int | None:
        """The number of ids when they are a list."""
        return len(self.user_ids) if isinstance(self.user_ids, list) else None

    def segment(self) -> Segment:
        """Incremental: each id as a record ``{"user_id": id, attribute: value}``, diffed in object storage
        (one document per sync) whatever the source; users who left get ``attribute`` removed."""
        return Segment("user_id", None, self._id_records, skip_nulls=self.null_values == "skip")

    def _id_records(self) -> Iterator[dict[str, Any]]:
        for raw in self._query().rows() if self.sql else (self.user_ids or []):
            user_id = next(iter(raw.values()), None) if isinstance(raw, Mapping) else raw
            yield {"user_id": user_id, self.attribute: self.value}

    def source_label(self) -> str:
        """``attribute=value for <source>``: the chunk's name in the UI."""
        return f"{self.attribute}={self.value!r} for {super().source_label()}"

    def attribute_sources(self, *, query_columns: bool = False) -> AttributeSources:
        """One attribute, set to a constant: fed by no source column (OpenLineage, the asset event).

        :param query_columns: unused (the ids' query says nothing of the attribute).
        """
        return AttributeSources(constants=(str(self.attribute),))
