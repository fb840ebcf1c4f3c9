"""What the example DAGs need to read segments from the demo warehouse on any SQL connection.

Kept in the package (not in ``dags/``) so that the DAG files stay declarations: no I/O at parse time,
and the same helpers serve the docker-compose deployment, where only the package is installed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_userattrs.demo.warehouse import USER_ATTRIBUTES_COLUMNS

USER_ID_COLUMN = {"altatech": "user_id", "fyno": "fyno_distinct_id", "dx": "email", "usercom": "usercom_id"}
"""The warehouse column holding each vendor's user id."""

SYNC_ATTRIBUTES = tuple(c for c in USER_ATTRIBUTES_COLUMNS if c not in USER_ID_COLUMN.values())
"""Every column of ``user_attributes`` that is not a vendor's user id."""


def vendor_of(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    return str(BaseHook.get_connection(conn_id).conn_type)


def attributes_table(warehouse_conn_id: str, table: str | None = None) -> str:
    """The ``user_attributes`` view: schema-qualified on PostgreSQL, where the generator uses a schema."""
    if table:
        return table
    from airflow.sdk import BaseHook

    conn_type = BaseHook.get_connection(warehouse_conn_id).conn_type
    return "userattrs_demo.user_attributes" if conn_type in ("postgres", "postgresql") else "user_attributes"


def quote_literal(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def plan_chunks(
    warehouse_conn_id: str,
    vendor_conn_id: str,
    chunk_size: int,
    where: str = "",
    table: str | None = None,
) -> list[dict[str, Any]]:
    """One query per chunk of ``chunk_size`` users, by key ranges (keyset pagination).

    Chunks are queries, not rows: XCom carries a few hundred bytes per chunk whatever the segment size,
    and each mapped task streams its own rows from the warehouse.
    """
    from airflow_provider_userattrs.operators.sources import stream_sql

    vendor = vendor_of(vendor_conn_id)
    id_column = USER_ID_COLUMN[vendor]
    source = attributes_table(warehouse_conn_id, table)
    condition = f"WHERE {where}" if where.strip() else ""
    columns = ", ".join((id_column, *SYNC_ATTRIBUTES))
    bounds: list[Any] = []
    rows = stream_sql(warehouse_conn_id, f"SELECT user_id FROM {source} {condition} ORDER BY user_id")
    for count, row in enumerate(rows):
        if count % chunk_size == 0:
            bounds.append(row["user_id"])
    chunks = []
    for index, low in enumerate(bounds):
        high = bounds[index + 1] if index + 1 < len(bounds) else None
        keys = [f"user_id >= {quote_literal(low)}"] + ([f"user_id < {quote_literal(high)}"] if high is not None else [])
        filters = " AND ".join(([f"({where})"] if where.strip() else []) + keys)
        chunks.append(
            {
                "sql": f"SELECT {columns} FROM {source} WHERE {filters} ORDER BY user_id",
                "user_id_field": id_column,
            }
        )
    return chunks


def segment_ids_sql(warehouse_conn_id: str, vendor_conn_id: str, where: str, table: str | None = None) -> str:
    """The ids of a segment, in the column the vendor identifies users by."""
    id_column = USER_ID_COLUMN[vendor_of(vendor_conn_id)]
    source = attributes_table(warehouse_conn_id, table)
    return f"SELECT {id_column} FROM {source} WHERE {where} ORDER BY user_id"
