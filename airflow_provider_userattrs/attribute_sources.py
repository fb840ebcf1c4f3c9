"""What a sync task writes, as OpenLineage and the asset event ask it of the operator.

Each sync operator answers :meth:`SyncTask.attribute_sources` from its own (rendered) parameters, the way
common-sql operators hand their own ``sql`` and hook to OpenLineage. :mod:`airflow_provider_userattrs.lineage`
and :mod:`airflow_provider_userattrs.assets` ask through this protocol and import no operator; the operators
import them, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["AttributeSources", "SyncTask"]


@dataclass(frozen=True)
class AttributeSources:
    """Which source column each vendor attribute takes its value from, as far as it is known before reading.

    ``columns`` maps attribute -> source column (equal names unless ``attributes`` renames); ``constants`` are
    attributes set to one value for everybody (``MassUpdateOperator``), fed by no column.
    """

    columns: dict[str, str] = field(default_factory=dict)
    constants: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [*self.columns, *self.constants]


class SyncTask(Protocol):
    """What lineage and the asset event read of a sync operator: its connection, its query, its attributes."""

    conn_id: str
    sql: str | None
    sql_conn_id: str | None

    def attribute_sources(self, *, query_columns: bool = False) -> AttributeSources:
        """The attributes the task sends and their source columns, from its (rendered) parameters.

        :param query_columns: a query without explicit attributes sends every column but the user id; those
            columns are asked of the warehouse (no row is read) only when this is set, once the sync ran.
        """
        ...
