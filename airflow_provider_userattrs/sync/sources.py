"""Where the users to sync come from: a list, any Airflow SQL connection, or a failure file to replay.

Every source yields :class:`Item` with its position and its user id (``key``). A list continues by position
(its order is its own); a SQL source by user id (``sync/keyset.py``): a query needs no ``ORDER BY``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_userattrs.errors import SourceConfigError
from airflow_provider_userattrs.results import UserUpdate
from airflow_provider_userattrs.sync import storage
from airflow_provider_userattrs.sync.keyset import ResumePoint, ordered_statement, skip_settled
from airflow_provider_userattrs.sync.sql import describe_sql, dialect_of

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
"""A record or a SQL row: column name to value."""


@dataclass(frozen=True)
class Item:
    """One unit of work: a user update, or a record that cannot become one (and why)."""

    position: int
    update: UserUpdate | None
    problem: str | None = None
    counted: bool = False
    """Read from a failure file: the lines say an earlier try already counted this user (it also had a
    rejection). Only the engine decides whether that matters (see ``sync/engine.py``)."""
    state: Mapping[str, str | None] | None = None
    """Incremental sync: the text each attribute's state takes once delivered (None: remove the row)."""
    state_user: str | None = None
    removal: bool = False
    """A user who left the segment: its attributes are removed where the vendor can."""
    key: object = None
    """The user id as the source gave it: where a SQL source resumes (``sync/keyset.py``)."""
    row: object = field(default=None, repr=False, compare=False)
    """The source row: its fingerprint (``keyset.row_digest``) tells which of several rows of one id is settled."""


def stream_sql(sql_conn_id: str, sql: str, parameters: Any = None, fetch_size: int = 10_000) -> Iterator[Row]:
    """Rows of ``sql`` as dicts, fetched ``fetch_size`` at a time, with a server-side cursor where the
    database offers one (PostgreSQL): memory stays flat whatever the size of the segment.

    Any connection whose hook is a common-sql ``DbApiHook`` works (SQLite, PostgreSQL, Snowflake, ...).
    """
    yield from stream_statement(sql_hook(sql_conn_id), sql, parameters, fetch_size)


def stream_statement(hook: Any, sql: str, parameters: Any = None, fetch_size: int = 10_000) -> Iterator[Row]:
    """As :func:`stream_sql`, on a hook already at hand."""
    conn = hook.get_conn()
    cursor = None
    try:
        cursor = _cursor(hook, conn, fetch_size)
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
        # Closing a half-read cursor (a server-side one, or mysql-connector's unbuffered one: "Unread result
        # found") must not hide the real error, nor fail a stream dropped on purpose (a paused sync).
        for closing in (cursor, conn):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                log.debug("closing a half-read %s failed", type(closing).__name__, exc_info=True)


def sql_hook(sql_conn_id: str) -> Any:
    """The common-sql hook of an Airflow connection (a DB-API hook: ``get_conn()``)."""
    from airflow_provider_userattrs.compat import BaseHook

    hook = BaseHook.get_connection(sql_conn_id).get_hook()  # type: ignore[no-untyped-call]  # untyped in Airflow
    if not hasattr(hook, "get_conn"):
        raise TypeError(f"connection {sql_conn_id!r} is not a SQL connection (its hook has no get_conn)")
    return hook


def sql_connection(sql_conn_id: str) -> Any:
    """A DB-API connection of an Airflow SQL connection."""
    return sql_hook(sql_conn_id).get_conn()


def query_columns(hook: Any, sql: str, parameters: Any = None) -> list[str]:
    """The columns ``sql`` returns, without reading a row."""
    conn = hook.get_conn()
    try:
        cursor = conn.cursor()
        text = describe_sql(sql)
        cursor.execute(text, parameters) if parameters is not None else cursor.execute(text)
        names = [str(d[0]) for d in cursor.description or ()]
        cursor.fetchall()  # no row; an unbuffered driver (mysql-connector) refuses to close an unread result
        cursor.close()
        return names
    finally:
        conn.close()


def keyed_rows(
    sql_conn_id: str, sql: str, parameters: Any, key_column: str | None, point: ResumePoint, fetch_size: int = 10_000
) -> tuple[str, Iterator[Row]]:
    """The rows of ``sql`` in user-id order from ``point`` on (``sync/keyset.py``), and the id's column.

    ``key_column`` None: the query's first column. A query without that column fails here, before any row is
    sent, with :class:`SourceConfigError` (retrying would not help).
    """
    hook = sql_hook(sql_conn_id)
    columns = query_columns(hook, sql, parameters)
    key = key_column or (columns[0] if columns else "")
    if key not in columns:
        raise SourceConfigError(
            f"the query on {sql_conn_id!r} returns no column {key!r} (the user id; columns: {', '.join(columns)}): "
            "fix user_id_field or the query"
        )
    if not point.keyed:  # a checkpoint from before resume by key: it counted positions of this very query
        log.warning("Resuming a checkpoint of an older version by position (%d rows settled)", point.offset)
        return key, itertools.islice(stream_statement(hook, sql, parameters, fetch_size), point.offset, None)
    statement = ordered_statement(dialect_of(hook), hook.placeholder, sql, parameters, key, point)
    rows = stream_statement(hook, statement.sql, statement.parameters, fetch_size)
    return key, skip_settled(rows, key, point)


def _cursor(hook: Any, conn: Any, fetch_size: int) -> Any:
    if dialect_of(hook).named_cursor:
        # A named cursor is a server-side cursor: rows travel fetch_size at a time.
        cursor = conn.cursor(name="userattrs_stream")
        cursor.itersize = fetch_size
        return cursor
    return conn.cursor()


Attributes = Sequence[str] | Mapping[str, str] | None
"""A list restricts the keys sent; a mapping renames them (``{column: attribute}``); None sends all."""


def from_records(
    records: Iterable[Any], user_id_field: str, attributes: Attributes, start: int = 0, *, skip: bool = True
) -> Iterator[Item]:
    """Turn records into updates: the ``user_id_field`` identifies the user, other keys are attributes.

    A record that is not a mapping or has no user id becomes an :class:`Item` with the problem, so that
    it is counted and reported rather than dropped. ``start``: the first position; with ``skip`` the
    records before it are skipped (a list resumed by position), without it ``records`` already begin there
    (rows resumed by key).
    """
    rest = itertools.islice(records, start, None) if skip else records
    for position, record in enumerate(rest, start=start):
        if not isinstance(record, Mapping):
            yield Item(position, None, f"the record is a {type(record).__name__}, not a mapping")
            continue
        if user_id_field not in record:
            yield Item(position, None, f"the record has no field {user_id_field!r} (the user id)")
            continue
        user_id = record[user_id_field]
        if user_id is None:
            yield Item(
                position,
                None,
                f"field {user_id_field!r} (the user id) is NULL",
                row=record,
            )
            continue
        if attributes is None:
            values = {k: v for k, v in record.items() if k != user_id_field}
        elif isinstance(attributes, Mapping):
            values = {attribute: record.get(column) for column, attribute in attributes.items()}
        else:
            values = {name: record.get(name) for name in attributes}
        yield Item(position, UserUpdate(user_id, values), key=user_id, row=record)


def from_user_ids(
    user_ids: Iterable[Any], attribute: str, value: Any, start: int = 0, *, skip: bool = True
) -> Iterator[Item]:
    """One update of ``attribute`` to ``value`` per id; a SQL row's first column is the id. ``start`` and
    ``skip`` as in :func:`from_records`."""
    rest = itertools.islice(user_ids, start, None) if skip else user_ids
    for position, raw in enumerate(rest, start=start):
        user_id = next(iter(raw.values()), None) if isinstance(raw, Mapping) else raw  # a SQL row: its first column
        if user_id is None:
            yield Item(position, None, "the user id is NULL", row=raw)
            continue
        yield Item(position, UserUpdate(user_id, {attribute: value}), key=user_id, row=raw)


def replay_items(
    parts: Iterable[str],
    start: int = 0,
    only_retryable: bool = True,
    exclude: set[tuple[str, str]] | None = None,
) -> Iterator[Item]:
    """Users to send again from failure files: their retryable attributes, grouped back per user.

    Lines of one user are adjacent in the files this package writes, so grouping needs no memory
    beyond one user. ``start`` skips that many users (a resumed replay); ``exclude`` drops (user,
    attribute) pairs a replay already delivered (the ledger).
    """
    lines = (line for part in parts for line in storage.read_lines(part))
    wanted = (
        line
        for line in lines
        if (line.get("retryable") or not only_retryable)
        and not (exclude and (storage.ledger_key(line.get("user_id")), str(line.get("attribute"))) in exclude)
    )
    groups = itertools.groupby(wanted, key=_user_of_line)
    for position, (_, group) in enumerate(itertools.islice(groups, start, None), start=start):
        lines_of_user = list(group)
        first = lines_of_user[0]
        values = {line["attribute"]: line.get("value") for line in lines_of_user if line.get("attribute")}
        counted = any(line.get("counted") for line in lines_of_user)
        yield Item(position, UserUpdate(first["user_id"], values), counted=counted)


def _user_of_line(line: storage.Line) -> tuple[object, str]:
    return line.get("position"), json_key(line.get("user_id"))


def json_key(value: object) -> str:
    """A grouping key that keeps 42 and "42" apart (they may be different users of one vendor)."""
    return f"{type(value).__name__}:{value}"
