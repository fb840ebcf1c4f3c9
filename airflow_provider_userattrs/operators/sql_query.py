"""The query of a SQL source (``sql`` on ``sql_conn_id``), as both operators read it: ``fetch_size`` rows at a
time, in its own order (the incremental state's segment) or in user-id order from where earlier tries stopped
(``sync/keyset.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.sync import sources
from airflow_provider_userattrs.sync.keyset import ResumePoint


@dataclass(frozen=True)
class SqlQuery:
    """``sql`` with its bind ``parameters``, as rendered, on the connection ``conn_id``.

    A missing connection fails only when the query is read: a source of records or ids has none to give.
    """

    task_id: str
    conn_id: str | None
    sql: str
    parameters: Mapping[str, Any] | Sequence[Any] | None
    fetch_size: int

    def rows(self) -> Iterator[sources.Row]:
        """Every row, in the query's own order."""
        return sources.stream_sql(self.checked_conn_id(), self.sql, self.parameters, self.fetch_size)

    def keyed_rows(self, key_column: str | None, point: ResumePoint) -> Iterator[sources.Row]:
        """The rows in order of ``key_column`` (None: the first column), after what ``point`` says was settled."""
        _, rows = sources.keyed_rows(
            self.checked_conn_id(), self.sql, self.parameters, key_column, point, self.fetch_size
        )
        return rows

    def checked_conn_id(self) -> str:
        """``conn_id``.

        :raises AirflowFailException: there is none (a retry would have none either).
        """
        if not self.conn_id:
            raise AirflowFailException(f"{self.task_id}: sql needs sql_conn_id (an Airflow SQL connection)")
        return self.conn_id
