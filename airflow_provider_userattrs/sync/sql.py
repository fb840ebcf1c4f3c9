"""The SQL a sync runs in the warehouse, for every engine: what common-sql gives, and the one table of the rest.

From common-sql's ``DbApiHook`` of the connection come the **placeholder** (``hook.placeholder``: ``?`` or
``%s``, overridable by the connection's ``placeholder`` extra) and the **dialect name** (``hook.dialect_name``,
read from the connection's SQLAlchemy URL, or its ``dialect`` extra). No driver module is sniffed.

What common-sql does not have lives in :data:`DIALECTS`, one row per engine, and nowhere else:

- how an identifier is quoted (``"x"`` or `````x`````);
- the text type a value is compared by (``CAST(x AS TEXT)`` is an error on MySQL and BigQuery, and is
  ``VARCHAR(256)`` on Redshift, which would cut long values);
- the upsert of the incremental state: ``INSERT ... ON CONFLICT`` (SQLite, PostgreSQL, DuckDB),
  ``INSERT ... ON DUPLICATE KEY UPDATE`` (MySQL, MariaDB) or ``MERGE`` (Snowflake, BigQuery, Redshift,
  Databricks). common-sql's ``insert_rows(replace=True)`` is not used: its generic dialect writes MySQL's
  ``REPLACE INTO`` (an error on DuckDB and the four cloud warehouses), it generates one statement per row
  (one round trip per row with psycopg2: 3,000,000 for a first run of 1,000,000 users and 3 attributes), and
  it opens a connection of its own per call, which SQLite makes wait behind the diff being read;
- the state table's column types;
- the results table's (``results_table``, :func:`create_results_table`): the types of its time and of a
  boolean, and, on SQLite, what lets it be written while the sync's query is still being read (WAL). It is
  written with the very upserts of the state (one generic builder each: ``ON CONFLICT``, ``ON DUPLICATE KEY
  UPDATE``, ``MERGE``), keyed by one ``row_key`` column.

The counts of ``max_removals`` (:func:`cleared_count_statement`, :func:`leavers_count_statement`) are built on the
very joins of the diff and the leavers (one builder each), so that they count what those would send.

Every value is bound (state key, attribute names, resume keys, timestamps); identifiers are quoted. A user's
query is always wrapped as a subquery on lines of its own, so a trailing comment or ``;`` cannot swallow
what follows.

Engines tested for real (tests/sync/test_warehouses.py): SQLite, PostgreSQL, DuckDB, MariaDB. Snowflake,
BigQuery, Redshift and Databricks: the statements are parsed with sqlglot in those dialects
(tests/sync/test_sql.py), and their ``MERGE`` runs on PostgreSQL and DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_userattrs.errors import SourceConfigError

Upsert = Literal["on_conflict", "on_duplicate_key", "merge"]

STATE_COLUMNS = ("state_key", "user_id", "attribute", "value", "synced_at")
STATE_KEY_COLUMNS = ("state_key", "user_id", "attribute")
_MERGE_ROWS = 250
"""Rows per ``MERGE`` statement: 1,250 bound values, under every warehouse's limit (BigQuery: 10,000)."""
_ARRAY_ROWS = 10_000
"""Rows per array upsert (PostgreSQL, DuckDB): 5 parameters whatever the number of rows."""
_INSERT_ROWS = 500
"""Rows per multi-row ``INSERT``: 2,500 values (7,000 in the results table), under SQLite's 32,766 and far under
PostgreSQL's and MySQL's 65,535."""


@dataclass(frozen=True)
class SqlDialect:
    """What one engine needs that common-sql does not say (see the module's docstring)."""

    name: str
    """Also the dialect's name in sqlglot (the parse tests)."""
    label: str
    quote: str = '"'
    text_type: str = "TEXT"
    upsert: Upsert | None = "on_conflict"
    """None: the incremental state cannot live in this engine (its SQL is not known here)."""
    named: str = "%({})s"
    """A named parameter, for a user's query bound by name (a mapping of ``parameters``)."""
    key_type: str = "VARCHAR({})"
    value_type: str = ""
    """The state's ``value`` column (default: ``text_type``)."""
    primary_key: str = "PRIMARY KEY ({})"
    named_cursor: bool = False
    """PostgreSQL: ``cursor(name=...)`` is a server-side cursor, the rows travel ``fetch_size`` at a time
    (other drivers stream with ``fetchmany`` on a plain cursor)."""
    array_rows: str | None = None
    """Rows from one array parameter per column (``{}``: the placeholder): the state's upsert then sends
    10,000 rows in one statement with 5 values, instead of 500 rows with 2,500 values (a first run of 20,000
    users: PostgreSQL 2.9 -> 1.8 s, DuckDB 5.6 -> 1.4 s; BENCHMARKS.md section 8)."""
    array_cast: str = "{}"
    """One column's array parameter in ``array_rows``."""
    array_param: str | None = None
    """One column's array parameter of any type (``{0}``: the placeholder, ``{1}``: the element's type), for
    the results table's columns that are not text (its upserts go the way of the state's with it)."""
    reads_block_writes: bool = False
    """SQLite: no other connection writes while a read is open, so the diff is materialised first."""
    timestamp_type: str = "TIMESTAMP"
    """The results table's ``recorded_at`` (UTC, bound as ISO text and cast). SQLite has no such type: TEXT,
    which compares with ``CURRENT_DATE`` as a date would."""
    boolean_type: str = "BOOLEAN"
    """The results table's ``retryable``."""
    writes_beside_reads: str | None = None
    """Run once before the results table is written, so that its writes do not wait for the sync's query,
    still being read on another connection. SQLite: WAL journaling (a setting the database file keeps):
    without it, a commit waits for every reader to finish, and the reader is the sync itself."""

    def quoted(self, name: str) -> str:
        """``name`` as an identifier (a ``schema.table`` quoted part by part), embedded quotes doubled."""
        return ".".join(self.quote + part.replace(self.quote, self.quote * 2) + self.quote for part in name.split("."))

    def text(self, expression: str) -> str:
        """``expression`` as text, the way the state compares and stores values."""
        return f"CAST({expression} AS {self.text_type})"


DIALECTS: dict[str, SqlDialect] = {
    "sqlite": SqlDialect(
        "sqlite",
        "SQLite",
        named=":{}",
        reads_block_writes=True,
        timestamp_type="TEXT",
        writes_beside_reads="PRAGMA journal_mode=WAL",
    ),
    "postgresql": SqlDialect(
        "postgres",
        "PostgreSQL",
        named_cursor=True,
        array_rows="SELECT * FROM unnest({})",
        array_cast="{}::text[]",
        array_param="{0}::{1}[]",
    ),
    "duckdb": SqlDialect(
        "duckdb",
        "DuckDB",
        text_type="VARCHAR",
        named="${}",
        array_rows="SELECT {}",
        array_cast="unnest({}::VARCHAR[])",
        array_param="unnest({0}::{1}[])",
    ),
    # A binary collation: MySQL's default one is case-insensitive, so "Gold" -> "gold" would not be a change, and
    # users "A@x.com" and "a@x.com" would share a state row.
    "mysql": SqlDialect(
        "mysql",
        "MySQL / MariaDB",
        quote="`",
        text_type="CHAR",
        upsert="on_duplicate_key",
        key_type="VARCHAR({}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        value_type="TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        timestamp_type="DATETIME(6)",
    ),
    "snowflake": SqlDialect("snowflake", "Snowflake", text_type="VARCHAR", upsert="merge"),
    "bigquery": SqlDialect(
        "bigquery",
        "BigQuery",
        quote="`",
        text_type="STRING",
        upsert="merge",
        key_type="STRING",
        primary_key="PRIMARY KEY ({}) NOT ENFORCED",
        boolean_type="BOOL",
    ),
    "redshift": SqlDialect("redshift", "Redshift", text_type="VARCHAR(65535)", upsert="merge"),
    "databricks": SqlDialect(
        "databricks",
        "Databricks",
        quote="`",
        text_type="STRING",
        upsert="merge",
        named=":{}",
        key_type="STRING",
        primary_key="",
    ),
}
"""The one table of per-engine SQL facts, by common-sql's dialect name."""

_ALIASES = {"postgres": "postgresql", "mariadb": "mysql", "sqlite3": "sqlite", "databricks-sql": "databricks"}


def dialect_of(hook: Any) -> SqlDialect:
    """The engine of a common-sql hook: the connection's ``dialect`` extra, else ``hook.dialect_name``; an unknown
    engine gets a generic entry (common-sql's quoting) that streams and resumes, but cannot hold an incremental
    state."""
    try:
        extra = getattr(hook, "connection_extra", None) or {}
    except Exception:  # a hook without a connection (tests' stand-ins): its dialect_name decides
        extra = {}
    name = str(extra.get("dialect") or getattr(hook, "dialect_name", "default") or "default").lower()
    name = _ALIASES.get(name, name)
    known = DIALECTS.get(name)
    if known is not None:
        return known
    quote = str(getattr(hook, "escape_word_format", '"{}"') or '"{}"')[:1] or '"'
    return SqlDialect(name, name, quote=quote, text_type="VARCHAR(4000)", upsert=None)


@dataclass(frozen=True)
class Statement:
    """SQL text and its bound values, in the placeholder style of the connection."""

    sql: str
    parameters: Sequence[Any] | Mapping[str, Any] | None = None


class Binder:
    """Builds a statement around a user's query, binding our values in the style its ``parameters`` use.

    A user's query bound by position (a sequence, or none) gets our values by position, in the order their
    placeholders appear in the text; one bound by name (a mapping) gets ours by name (``userattrs_0``...).
    """

    def __init__(self, dialect: SqlDialect, placeholder: str, user_parameters: Any) -> None:
        self.dialect = dialect
        self.placeholder = placeholder
        self.by_name = isinstance(user_parameters, Mapping)
        self.user_parameters = user_parameters
        self._values: list[Any] = []
        self._sources: list[str] = []

    def bind(self, value: Any) -> str:
        """The placeholder of ``value``, remembered in text order."""
        self._values.append(value)
        if self.by_name:
            return self.dialect.named.format(f"userattrs_{len(self._values) - 1}")
        return self.placeholder

    def source(self, sql: str) -> str:
        """The user's query as a subquery (a token :meth:`statement` replaces).

        A query given without parameters was never passed through the driver's formatting: if values are bound
        to the statement, a ``%`` of a format-style driver (psycopg: ``LIKE '%@gmail.com'``) must be doubled to
        stay a ``%``; if none are, it must stay single (mysql-connector formats nothing without values).
        """
        self._sources.append(sql)
        return f"\x00userattrs_source_{len(self._sources) - 1}\x00"

    def statement(self, sql: str) -> Statement:
        """The statement, its values after the user's own (every builder here puts the user's query first)."""
        if self.by_name:
            named = {f"userattrs_{i}": v for i, v in enumerate(self._values)}
            return Statement(self._with_sources(sql, escape=False), {**dict(self.user_parameters), **named})
        user = list(self.user_parameters or [])
        values = [*user, *self._values]
        escape = bool(values) and self.user_parameters is None and "%" in self.placeholder
        return Statement(self._with_sources(sql, escape=escape), values or None)

    def _with_sources(self, sql: str, *, escape: bool) -> str:
        for index, source in enumerate(self._sources):
            text = source.replace("%", "%%") if escape else source
            sql = sql.replace(f"\x00userattrs_source_{index}\x00", subquery(text))
        return sql


def subquery(sql: str) -> str:
    """A user's query as a subquery: on lines of its own, without a trailing ``;``."""
    body = sql.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return f"(\n{body}\n)"


def describe_sql(sql: str) -> str:
    """The user's query returning no row: its columns only."""
    return f"SELECT * FROM {subquery(sql)} userattrs_src WHERE 1 = 0"


# -- the incremental state table ------------------------------------------------------------------------


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


def check_table_name(table: str) -> str:
    if not _PLAIN_NAME.match(table):
        raise ValueError(f"state table {table!r} is not a plain [catalog.][schema.]table name")
    return table


def require_upsert(dialect: SqlDialect, conn_id: str) -> Upsert:
    """The engine's upsert, or a message naming what to do when this engine cannot hold the state."""
    if dialect.upsert is None:
        known = ", ".join(sorted(DIALECTS))
        raise SourceConfigError(
            f"connection {conn_id!r}: an incremental sync keeps its state in the warehouse, and this provider does "
            f"not know the SQL of dialect {dialect.name!r} (known: {known}). If the engine speaks one of them, set "
            'the connection\'s extra {"dialect": "<name>"}; otherwise sync without incremental=True, or from '
            "records (the state is then kept in object storage)."
        )
    return dialect.upsert


def create_state_table(dialect: SqlDialect, table: str) -> str:
    key = dialect.key_type
    q = dialect.quoted
    columns = [
        f"{q('state_key')} {key.format(200)} NOT NULL",
        f"{q('user_id')} {key.format(255)} NOT NULL",
        f"{q('attribute')} {key.format(255)} NOT NULL",
        f"{q('value')} {dialect.value_type or dialect.text_type}",
        f"{q('synced_at')} {key.format(40)}",
    ]
    if dialect.primary_key:
        columns.append(dialect.primary_key.format(", ".join(q(c) for c in STATE_KEY_COLUMNS)))
    return f"CREATE TABLE IF NOT EXISTS {q(table)} ({', '.join(columns)})"


@dataclass(frozen=True)
class _Shape:
    """The columns of a table written by upsert: all of them, its key, and those a new row overwrites."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    updated: tuple[str, ...]


_STATE = _Shape(STATE_COLUMNS, STATE_KEY_COLUMNS, ("value", "synced_at"))


def upsert_statements(
    dialect: SqlDialect, placeholder: str, table: str, rows: Sequence[tuple[str, str, str, str, str]]
) -> list[Statement]:
    """Statements writing ``rows`` (state_key, user_id, attribute, value, synced_at), a batch each."""
    if dialect.array_rows is not None and dialect.upsert == "on_conflict":
        return _array_upserts(dialect, placeholder, table, rows)
    return _upserts(dialect, table, _STATE, [placeholder] * len(STATE_COLUMNS), rows)


def _upserts(
    dialect: SqlDialect, table: str, shape: _Shape, values: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[Statement]:
    """Multi-row upserts of ``rows`` (``values``: each column's bound expression), a batch of rows each."""
    upsert = dialect.upsert
    size = _MERGE_ROWS if upsert == "merge" else _INSERT_ROWS
    statements = []
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        if upsert == "merge":
            sql = _merge(dialect, table, shape, values, len(batch))
        else:
            row = "(" + ", ".join(values) + ")"
            sql = _insert_upsert(dialect, table, shape, f"VALUES {', '.join([row] * len(batch))}")
        statements.append(Statement(sql, [value for row in batch for value in row]))
    return statements


def _array_upserts(
    dialect: SqlDialect, placeholder: str, table: str, rows: Sequence[tuple[str, str, str, str, str]]
) -> list[Statement]:
    assert dialect.array_rows is not None
    columns = ", ".join(dialect.array_cast.format(placeholder) for _ in STATE_COLUMNS)
    sql = _insert_upsert(dialect, table, _STATE, dialect.array_rows.format(columns))
    statements = []
    for start in range(0, len(rows), _ARRAY_ROWS):
        batch = rows[start : start + _ARRAY_ROWS]
        statements.append(Statement(sql, [list(column) for column in zip(*batch, strict=True)]))
    return statements


def _insert_upsert(dialect: SqlDialect, table: str, shape: _Shape, source: str) -> str:
    q = dialect.quoted
    head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in shape.columns)}) {source}"
    if dialect.upsert == "on_duplicate_key":
        return f"{head} ON DUPLICATE KEY UPDATE " + ", ".join(f"{q(c)} = VALUES({q(c)})" for c in shape.updated)
    keys = ", ".join(q(c) for c in shape.key)
    return f"{head} ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in shape.updated)


def _merge(dialect: SqlDialect, table: str, shape: _Shape, values: Sequence[str], rows: int) -> str:
    q = dialect.quoted
    first = "SELECT " + ", ".join(f"{value} AS {q(c)}" for value, c in zip(values, shape.columns, strict=True))
    rest = " UNION ALL SELECT " + ", ".join(values)
    source = first + rest * (rows - 1)
    on = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in shape.key)
    return (
        f"MERGE INTO {q(table)} t USING ({source}) s ON {on} "
        f"WHEN MATCHED THEN UPDATE SET {', '.join(f'{q(c)} = s.{q(c)}' for c in shape.updated)} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(q(c) for c in shape.columns)}) "
        f"VALUES ({', '.join('s.' + q(c) for c in shape.columns)})"
    )


def delete_statement(dialect: SqlDialect, placeholder: str, table: str) -> str:
    """Forget one attribute of one user (``executemany`` over state_key, user_id, attribute)."""
    q = dialect.quoted
    where = " AND ".join(f"{q(c)} = {placeholder}" for c in STATE_KEY_COLUMNS)
    return f"DELETE FROM {q(table)} WHERE {where}"


def _joined(
    binder: Binder,
    table: str,
    sql: str,
    state_key: str,
    user_id_field: str,
    attributes: Sequence[tuple[str, str]],
) -> tuple[str, str, list[tuple[str, str]]]:
    """The segment LEFT JOINed to the state once per attribute, on the state's primary key.

    :return: the ``FROM ...`` clause (its values bound after the user's: the joins' placeholders come after the
        subquery's), the user id's text, and per attribute (current text, previous text). Every statement
        about the difference (:func:`diff_statement`, :func:`cleared_count_statement`) is built on it.
    """
    dialect = binder.dialect
    q = dialect.quoted
    uid = dialect.text(f"src.{q(user_id_field)}")
    joins, values = [], []
    for index, (column, name) in enumerate(attributes):
        alias = f"s{index}"
        values.append((dialect.text(f"src.{q(column)}"), f"{alias}.{q('value')}"))
        joins.append(
            f"LEFT JOIN {q(table)} {alias} ON {alias}.{q('state_key')} = {binder.bind(state_key)} "
            f"AND {alias}.{q('user_id')} = {uid} AND {alias}.{q('attribute')} = {binder.bind(name)}"
        )
    return f"FROM {binder.source(sql)} src {' '.join(joins)}", uid, values


def _changed(current: str, previous: str) -> str:
    # No NULL is stored (a removal deletes the row): a missing row means "nothing delivered".
    return (
        f"({previous} IS NULL AND {current} IS NOT NULL) OR ({previous} IS NOT NULL AND ({current} IS NULL OR "
        f"{current} <> {previous}))"
    )


def _cleared(current: str, previous: str) -> str:
    """The attribute is NULL in the segment and the state holds a delivered value: the diff sends a removal."""
    return f"{current} IS NULL AND {previous} IS NOT NULL"


def diff_statement(
    dialect: SqlDialect,
    placeholder: str,
    table: str,
    sql: str,
    parameters: Any,
    state_key: str,
    user_id_field: str,
    *,
    attributes: Sequence[tuple[str, str]],
    full_refresh: bool,
) -> Statement:
    """Rows of the segment with a changed attribute, with the previous and current text of each.

    ``attributes``: (column, attribute name at the vendor: what the state is kept under). One LEFT JOIN per
    attribute on the state's primary key; ordered by the user id's text.
    """
    binder = Binder(dialect, placeholder, parameters)
    q = dialect.quoted
    source, uid, values = _joined(binder, table, sql, state_key, user_id_field, attributes)
    select = ["src.*"]
    for index, (current, previous) in enumerate(values):
        select.append(f"{current} AS {q(f'__cur_{index}')}")
        select.append(f"{previous} AS {q(f'__prev_{index}')}")
    where = "" if full_refresh else " WHERE " + " OR ".join(f"({_changed(c, p)})" for c, p in values)
    return binder.statement(f"SELECT {', '.join(select)} {source}{where} ORDER BY {uid}")


def cleared_count_statement(
    dialect: SqlDialect,
    placeholder: str,
    table: str,
    sql: str,
    parameters: Any,
    state_key: str,
    user_id_field: str,
    *,
    attributes: Sequence[tuple[str, str]],
) -> Statement:
    """One row, one column: how many attributes the difference would clear (NULL in the segment, a value in
    the state), counted by the warehouse over the joins of :func:`diff_statement`, a full refresh or not (both
    send those removals). A user id repeated in the segment counts once per row, as the diff sends it."""
    binder = Binder(dialect, placeholder, parameters)
    source, _, values = _joined(binder, table, sql, state_key, user_id_field, attributes)
    cases = " + ".join(f"CASE WHEN {_cleared(c, p)} THEN 1 ELSE 0 END" for c, p in values) or "0"
    return binder.statement(f"SELECT COALESCE(SUM({cases}), 0) AS {dialect.quoted('cleared')} {source}")


def _leavers_source(binder: Binder, table: str, sql: str, state_key: str, user_id_field: str) -> str:
    """``FROM ... WHERE ...`` of the state rows whose user is no longer in the segment.

    An anti-join, not NOT EXISTS: engines hash or index it; a correlated subquery would scan the segment
    once per state row.
    """
    dialect = binder.dialect
    q = dialect.quoted
    # No DISTINCT: a case-insensitive collation (MySQL's default) would fold "A@x.com" and "a@x.com" into one,
    # and the other would look gone. Duplicates only repeat rows the anti-join drops anyway.
    present = f"SELECT {dialect.text('src.' + q(user_id_field))} AS uid FROM {binder.source(sql)} src"
    return (
        f"FROM {q(table)} s LEFT JOIN ({present}) present "
        f"ON present.uid = s.{q('user_id')} WHERE s.{q('state_key')} = {binder.bind(state_key)} "
        f"AND present.uid IS NULL"
    )


def leavers_statement(
    dialect: SqlDialect, placeholder: str, table: str, sql: str, parameters: Any, state_key: str, user_id_field: str
) -> Statement:
    """(user, attribute) of the state whose user is no longer in the segment, by user."""
    binder = Binder(dialect, placeholder, parameters)
    q = dialect.quoted
    source = _leavers_source(binder, table, sql, state_key, user_id_field)
    return binder.statement(
        f"SELECT s.{q('user_id')}, s.{q('attribute')} {source} ORDER BY s.{q('user_id')}, s.{q('attribute')}"
    )


def leavers_count_statement(
    dialect: SqlDialect, placeholder: str, table: str, sql: str, parameters: Any, state_key: str, user_id_field: str
) -> Statement:
    """One row: the users :func:`leavers_statement` would return, and their attributes (its rows)."""
    binder = Binder(dialect, placeholder, parameters)
    q = dialect.quoted
    source = _leavers_source(binder, table, sql, state_key, user_id_field)
    return binder.statement(f"SELECT COUNT(DISTINCT s.{q('user_id')}) AS users, COUNT(*) AS attributes {source}")


def state_size_statement(dialect: SqlDialect, placeholder: str, table: str, state_key: str) -> Statement:
    """One row: the users and the attributes the state of ``state_key`` holds (what this sync has delivered)."""
    q = dialect.quoted
    return Statement(
        f"SELECT COUNT(DISTINCT {q('user_id')}) AS users, COUNT(*) AS attributes FROM {q(table)} "
        f"WHERE {q('state_key')} = {placeholder}",
        [state_key],
    )


# -- the results table (results_table) --------------------------------------------------------------------

RESULTS_COLUMNS = (
    "row_key",
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "user_id",
    "attribute",
    "outcome",
    "reason",
    "retryable",
    "vendor",
    "position",
    "recorded_at",
)
_RESULTS = _Shape(
    RESULTS_COLUMNS, ("row_key",), ("outcome", "reason", "retryable", "vendor", "position", "recorded_at")
)
ROW_KEY_LENGTH = 32
"""``row_key``: 16 hex digits of the task instance, then 16 of (try, user, attribute) (``sync/results_table.py``)."""
RESULTS_LOOKUP_KEYS = 500
"""Row keys per lookup (:func:`results_keys_statements`) bound one by one."""


def create_results_table(dialect: SqlDialect, table: str) -> str:
    """The results table: one row per (task instance, try, user, attribute), its primary key ``row_key``.

    The key is one short column, not the six it stands for: those are far longer than MySQL's 3,072-byte
    index limit (three 250-character Airflow ids in utf8mb4 already take 3,000 bytes), and a record without a
    user id has none to put in a key.
    """
    q = dialect.quoted
    key = dialect.key_type
    text = dialect.value_type or dialect.text_type
    columns = [
        f"{q('row_key')} {key.format(ROW_KEY_LENGTH)} NOT NULL",
        f"{q('dag_id')} {key.format(250)} NOT NULL",
        f"{q('run_id')} {key.format(250)} NOT NULL",
        f"{q('task_id')} {key.format(250)} NOT NULL",
        f"{q('map_index')} INTEGER NOT NULL",
        f"{q('try_number')} INTEGER NOT NULL",
        f"{q('user_id')} {text}",
        f"{q('attribute')} {text}",
        f"{q('outcome')} {key.format(16)} NOT NULL",
        f"{q('reason')} {text}",
        f"{q('retryable')} {dialect.boolean_type} NOT NULL",
        f"{q('vendor')} {key.format(32)}",
        f"{q('position')} INTEGER",
        f"{q('recorded_at')} {dialect.timestamp_type} NOT NULL",
    ]
    if dialect.primary_key:
        columns.append(dialect.primary_key.format(q("row_key")))
    return f"CREATE TABLE IF NOT EXISTS {q(table)} ({', '.join(columns)})"


def results_upsert_statements(
    dialect: SqlDialect, placeholder: str, table: str, rows: Sequence[Sequence[Any]]
) -> list[Statement]:
    """Statements writing ``rows`` (values of :data:`RESULTS_COLUMNS`, ``recorded_at`` as ISO text), a batch of
    500 rows each (250 in a ``MERGE``, 10,000 as arrays on PostgreSQL and DuckDB, as the state's); a row whose
    ``row_key`` exists replaces its outcome.

    The rows' keys must be distinct: one statement may not touch a key twice (PostgreSQL's ``ON CONFLICT``).
    """
    if dialect.array_rows is not None and dialect.array_param is not None and dialect.upsert == "on_conflict":
        return _results_array_upserts(dialect, placeholder, table, rows)
    values = [placeholder] * (len(RESULTS_COLUMNS) - 1) + [f"CAST({placeholder} AS {dialect.timestamp_type})"]
    return _upserts(dialect, table, _RESULTS, values, rows)


def _results_array_upserts(
    dialect: SqlDialect, placeholder: str, table: str, rows: Sequence[Sequence[Any]]
) -> list[Statement]:
    """PostgreSQL, DuckDB: 10,000 rows per statement, one array parameter per column (14 values)."""
    assert dialect.array_rows is not None and dialect.array_param is not None
    types = {"map_index": "INTEGER", "try_number": "INTEGER", "position": "INTEGER"}
    types |= {"retryable": dialect.boolean_type, "recorded_at": dialect.timestamp_type}
    arrays = ", ".join(
        dialect.array_param.format(placeholder, types.get(c, dialect.text_type)) for c in RESULTS_COLUMNS
    )
    sql = _insert_upsert(dialect, table, _RESULTS, dialect.array_rows.format(arrays))
    return [
        Statement(sql, [list(column) for column in zip(*rows[start : start + _ARRAY_ROWS], strict=True)])
        for start in range(0, len(rows), _ARRAY_ROWS)
    ]


def results_keys_statements(dialect: SqlDialect, placeholder: str, table: str, keys: Sequence[str]) -> list[Statement]:
    """Which of ``keys`` the table holds: ``row_key IN (...)``, 500 bound keys a statement, or one array of
    10,000 on PostgreSQL and DuckDB."""
    q = dialect.quoted
    head = f"SELECT {q('row_key')} FROM {q(table)} WHERE {q('row_key')} IN "
    if dialect.array_rows is not None and dialect.array_param is not None:
        source = dialect.array_rows.format(dialect.array_param.format(placeholder, dialect.text_type))
        return [
            Statement(f"{head}({source})", [list(keys[i : i + _ARRAY_ROWS])]) for i in range(0, len(keys), _ARRAY_ROWS)
        ]
    statements = []
    for start in range(0, len(keys), RESULTS_LOOKUP_KEYS):
        batch = list(keys[start : start + RESULTS_LOOKUP_KEYS])
        statements.append(Statement(f"{head}({', '.join([placeholder] * len(batch))})", batch))
    return statements


def results_range_statement(dialect: SqlDialect, placeholder: str, table: str) -> str:
    """One row: the first row key from the first bound value on, below the second (a task instance's rows are
    one range of the key, see :data:`ROW_KEY_LENGTH`), or NULL. ``MIN`` of a key range: an index seek."""
    q = dialect.quoted
    key = q("row_key")
    return f"SELECT MIN({key}) FROM {q(table)} WHERE {key} >= {placeholder} AND {key} < {placeholder}"
