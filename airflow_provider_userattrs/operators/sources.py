"""Where the users to sync come from: a list, any Airflow SQL connection, or a failure file to replay."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_userattrs.operators import storage
from airflow_provider_userattrs.results import UserUpdate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One unit of work: a user update, or a record that cannot become one (and why)."""

    position: int
    update: UserUpdate | None
    problem: str | None = None
    counted: bool = False
    """Replayed work whose user was already counted as failed by an earlier try."""
    state: Mapping[str, str | None] | None = None
    """Incremental sync: the text each attribute's state takes once delivered (None: remove the row)."""
    state_user: str | None = None
    removal: bool = False
    """A user who left the segment: its attributes are removed where the vendor can."""


def stream_sql(
    sql_conn_id: str, sql: str, parameters: Any = None, fetch_size: int = 10_000
) -> Iterator[dict[str, Any]]:
    """Rows of ``sql`` as dicts, fetched ``fetch_size`` at a time, with a server-side cursor where the
    database offers one (PostgreSQL): memory stays flat whatever the size of the segment.

    Any connection whose hook is a common-sql ``DbApiHook`` works (SQLite, PostgreSQL, Snowflake, ...).
    """
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(sql_conn_id).get_hook()
    if not hasattr(hook, "get_conn"):
        raise TypeError(f"connection {sql_conn_id!r} is not a SQL connection (its hook has no get_conn)")
    conn = hook.get_conn()
    cursor = None
    try:
        cursor = _server_side_cursor(conn, fetch_size)
        cursor.execute(sql, parameters) if parameters is not None else cursor.execute(sql)
        columns: list[str] | None = None
        while True:
            rows = cursor.fetchmany(fetch_size)
            if columns is None:
                columns = [d[0] for d in cursor.description or ()]
            if not rows:
                break
            for row in rows:
                yield dict(zip(columns, row, strict=False))
    finally:
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # closing a half-read server-side cursor must not hide the real error
                log.debug("cursor close failed", exc_info=True)
        conn.close()


def _server_side_cursor(conn: Any, fetch_size: int) -> Any:
    module = type(conn).__module__
    if module.startswith("psycopg2") or module.startswith("psycopg"):
        # A named cursor is a server-side cursor: rows travel fetch_size at a time.
        cursor = conn.cursor(name="userattrs_stream")
        cursor.itersize = fetch_size
        return cursor
    return conn.cursor()


def from_records(
    records: Iterable[Mapping[str, Any]],
    user_id_field: str,
    attributes: Sequence[str] | Mapping[str, str] | None,
    start: int = 0,
) -> Iterator[Item]:
    """Turn records into updates: the ``user_id_field`` identifies the user, other keys are attributes.

    ``attributes`` restricts (a list) or renames (``{column: attribute}``) the keys sent.
    """
    for position, record in enumerate(itertools.islice(records, start, None), start=start):
        if not isinstance(record, Mapping):
            yield Item(position, None, f"record {position} is a {type(record).__name__}, not a mapping")
            continue
        if user_id_field not in record:
            yield Item(position, None, f"record {position} has no field {user_id_field!r} (the user id)")
            continue
        user_id = record[user_id_field]
        if user_id is None:
            yield Item(position, None, f"record {position}: field {user_id_field!r} (the user id) is NULL")
            continue
        if attributes is None:
            values = {k: v for k, v in record.items() if k != user_id_field}
        elif isinstance(attributes, Mapping):
            values = {attribute: record.get(column) for column, attribute in attributes.items()}
        else:
            values = {name: record.get(name) for name in attributes}
        yield Item(position, UserUpdate(user_id, values))


def from_user_ids(user_ids: Iterable[Any], attribute: str, value: Any, start: int = 0) -> Iterator[Item]:
    for position, user_id in enumerate(itertools.islice(user_ids, start, None), start=start):
        if isinstance(user_id, Mapping):  # a SQL row: its first column is the id
            user_id = next(iter(user_id.values()), None)
        if user_id is None:
            yield Item(position, None, f"record {position}: the user id is NULL")
            continue
        yield Item(position, UserUpdate(user_id, {attribute: value}))


def replay_items(
    parts: Iterable[str],
    start: int = 0,
    only_retryable: bool = True,
    exclude: set[tuple[str, str]] | None = None,
    keep_counted: bool = True,
) -> Iterator[Item]:
    """Users to send again from failure files: their retryable attributes, grouped back per user.

    Lines of one user are adjacent in the files this package writes, so grouping needs no memory
    beyond one user.
    """
    lines = (line for part in parts for line in storage.read_lines(part))
    wanted = (
        line
        for line in lines
        if (line.get("retryable") or not only_retryable)
        and not (exclude and (storage.ledger_key(line.get("user_id")), str(line.get("attribute"))) in exclude)
    )
    groups = itertools.groupby(wanted, key=lambda line: (line.get("position"), json_key(line.get("user_id"))))
    for position, (_, group) in enumerate(itertools.islice(groups, start, None), start=start):
        lines_of_user = list(group)
        first = lines_of_user[0]
        values = {line["attribute"]: line.get("value") for line in lines_of_user if line.get("attribute")}
        # Within one task the flag stops a double count; a separate replay run counts every user afresh.
        counted = keep_counted and any(line.get("counted") for line in lines_of_user)
        yield Item(position, UserUpdate(first["user_id"], values), counted=counted)


def json_key(value: Any) -> str:
    return f"{type(value).__name__}:{value}"
