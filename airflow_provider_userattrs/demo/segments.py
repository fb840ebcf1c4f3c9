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
    from airflow_provider_userattrs.compat import BaseHook

    return str(BaseHook.get_connection(conn_id).conn_type)


def attributes_table(warehouse_conn_id: str, table: str | None = None) -> str:
    """The ``user_attributes`` view: schema-qualified on PostgreSQL, where the generator uses a schema."""
    if table:
        return table
    from airflow_provider_userattrs.compat import BaseHook

    conn_type = BaseHook.get_connection(warehouse_conn_id).conn_type
    return "userattrs_demo.user_attributes" if conn_type in ("postgres", "postgresql") else "user_attributes"


def plan_chunks(
    warehouse_conn_id: str,
    vendor_conn_id: str,
    chunk_size: int,
    where: str = "",
    table: str | None = None,
) -> list[dict[str, Any]]:
    """One query per chunk of about ``chunk_size`` users, by ranges of the vendor's user id.

    The same rule the operator resumes by (``sync/keyset.py``): the segment is ordered by the user id (NULL ids
    first, in the first chunk), and cut where the id changes, so one id's duplicates stay in one chunk. Only
    the ids are read. Chunks are queries with their bound range, not rows: XCom carries a few hundred bytes
    per chunk whatever the segment size, and each mapped task streams its own rows from the warehouse.
    """
    from airflow_provider_userattrs.sync import keyset, sources
    from airflow_provider_userattrs.sync.sql import dialect_of

    id_column = USER_ID_COLUMN[vendor_of(vendor_conn_id)]
    segment = f"SELECT {', '.join((id_column, *SYNC_ATTRIBUTES))} FROM {attributes_table(warehouse_conn_id, table)}"
    if where.strip():
        segment += f" WHERE {where}"
    hook = sources.sql_hook(warehouse_conn_id)
    dialect, placeholder = dialect_of(hook), hook.placeholder
    ids = keyset.keys_statement(dialect, placeholder, segment, None, id_column)
    keys = (row["userattrs_key"] for row in sources.stream_statement(hook, ids.sql, ids.parameters))
    chunks = []
    for key_range in keyset.key_ranges(keys, chunk_size):
        statement = keyset.range_statement(dialect, placeholder, segment, None, id_column, key_range)
        parameters = list(statement.parameters) if statement.parameters is not None else None
        chunks.append({"sql": statement.sql, "parameters": parameters, "user_id_field": id_column})
    return chunks


def segment_ids_sql(warehouse_conn_id: str, vendor_conn_id: str, where: str, table: str | None = None) -> str:
    """The ids of a segment, in the column the vendor identifies users by."""
    id_column = USER_ID_COLUMN[vendor_of(vendor_conn_id)]
    source = attributes_table(warehouse_conn_id, table)
    return f"SELECT {id_column} FROM {source} WHERE {where}"  # the operator orders it by id (sync/keyset.py)
