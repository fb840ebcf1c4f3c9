"""Change-only syncs: send what changed since the last values the vendor accepted.

State is the last value delivered per (sync, user, attribute), behind one interface,
:class:`IncrementalState`, with two implementations: :class:`WarehouseState` (a table in the warehouse;
the difference is one query there, so a 1M-row segment is diffed by the database, not in Python) and
:class:`ObjectState` (one JSON document under ``ObjectStoragePath``, for records). State is written after
delivery only, chunk by chunk: a crash between the two causes a resend, never a skip, and a user that
failed stays different, so the next run sends it again.

``max_removals`` (:class:`RemovalLimit`): before the first request, the state counts what the difference would
remove (:meth:`IncrementalState.removal_counts`: a counting query of the same joins in the warehouse, a count
over the computed difference in object storage), and :func:`check_removals` stops the sync when it is more
than allowed, so that a truncated source table cannot empty a CRM.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.errors import SourceConfigError, UserAttrsError
from airflow_provider_userattrs.results import UserUpdate
from airflow_provider_userattrs.sync import sql
from airflow_provider_userattrs.sync.nulls import Removal
from airflow_provider_userattrs.sync.progress import Log
from airflow_provider_userattrs.sync.sources import (
    Attributes,
    Item,
    Row,
    from_records,
    query_columns,
    sql_hook,
    stream_statement,
)
from airflow_provider_userattrs.sync.storage import write_text_atomically

STATE_TABLE = "userattrs_sync_state"

StateUpdate = tuple[str, str, str | None]
"""(user, attribute, text of the delivered value, or None to forget the attribute)."""


def value_text(value: object) -> str | None:
    """The text a value is remembered by (None stays None: nothing is stored for it)."""
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class Segment:
    """The users a sync is about, as an incremental state needs to see them.

    ``rows`` reads the records (or the SQL rows) again each time it is called; ``sql`` is the query itself,
    for a state that diffs in the warehouse.
    """

    user_id_field: str
    attributes: Attributes
    rows: Callable[[], Iterable[Row]]
    sql: str | None = None
    parameters: Any = None
    fetch_size: int = 10_000
    skip_nulls: bool = False
    """``null_values="skip"``: an attribute that became NULL is still part of the difference (the client
    leaves it out and reports it skipped: ``sync/nulls.py``), but it is no removal (not counted by
    ``max_removals``) and its state keeps the value last delivered (the item's ``state`` does not name it)."""


class IncrementalState(ABC):
    """The last delivered values of one sync (``state_key``), and what differs from them."""

    state_key: str

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the state lives, for the log and the report."""

    @abstractmethod
    def changes(self, segment: Segment, full_refresh: bool) -> Iterator[Item]:
        """Users of ``segment`` whose values differ from the state (all of them with ``full_refresh``), by
        increasing position; each item carries the state text its attributes take once delivered."""

    @abstractmethod
    def leavers(self, segment: Segment, start: int) -> Iterator[Item]:
        """Users with state who are no longer in ``segment``, numbered from ``start``: their attributes are
        removed where the vendor can."""

    @abstractmethod
    def record(self, updates: Sequence[StateUpdate]) -> None:
        """Remember what the vendor accepted. Called after delivery, never before."""

    @abstractmethod
    def size(self) -> tuple[int, int]:
        """The users and the attributes the state holds: what this sync has delivered and not removed."""

    def removal_counts(self, segment: Segment, *, remove_missing: bool) -> RemovalCounts:
        """What the difference would remove, counted before anything is sent (``max_removals``).

        Here, a count over the computed difference (the object-storage state); :class:`WarehouseState` asks
        the warehouse instead. Attributes a full refresh would clear are the same ones: it is not asked.
        """
        cleared = removed_users = removed_attributes = 0
        for item in self.items(segment, full_refresh=False, remove_missing=remove_missing):
            if item.update is None:
                continue
            if item.removal:
                removed_users += 1
                removed_attributes += len(item.update.attributes)
            elif not segment.skip_nulls:
                cleared += sum(1 for value in item.update.attributes.values() if value is None)
        users, attributes = self.size()
        return RemovalCounts(cleared, removed_users, removed_attributes, users, attributes)

    def close(self) -> None:  # noqa: B027  # an optional hook: most states hold nothing open
        """Release what the state holds open (a database connection)."""

    def items(self, segment: Segment, *, full_refresh: bool, remove_missing: bool) -> Iterator[Item]:
        """The work of one incremental run: the changes, then (``remove_missing``) the leavers.

        Leavers are numbered after the last change, so that positions stay unique within the run.
        """
        next_position = 0
        for item in self.changes(segment, full_refresh):
            next_position = item.position + 1
            yield item
        if remove_missing:
            yield from self.leavers(segment, next_position)

    def __enter__(self) -> IncrementalState:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _leaver(position: int, user: str, names: Sequence[str]) -> Item:
    update = UserUpdate(user, Removal.fromkeys(names))
    return Item(position, update, state=dict.fromkeys(names), state_user=user, removal=True)


class WarehouseState(IncrementalState):
    """The state table in the warehouse, and the diff query against it (needs ``segment.sql``).

    Its SQL comes from ``sync/sql.py`` (the connection's placeholder and dialect, one table of what differs
    per engine): it runs on SQLite, PostgreSQL, DuckDB, MySQL/MariaDB, Snowflake, BigQuery, Redshift and
    Databricks.
    """

    def __init__(self, sql_conn_id: str, state_key: str, table: str = STATE_TABLE) -> None:
        self.table = sql.check_table_name(table)
        self.hook: Any = sql_hook(sql_conn_id)
        self.dialect = sql.dialect_of(self.hook)
        sql.require_upsert(self.dialect, sql_conn_id)
        self.placeholder: str = self.hook.placeholder
        self.sql_conn_id = sql_conn_id
        self.state_key = state_key
        self._conn: Any = None

    @property
    def where(self) -> str:
        return f"{self.table} in the warehouse ({self.sql_conn_id}, {self.dialect.label})"

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self.hook.get_conn()
            self._execute(sql.create_state_table(self.dialect, self.table))
            self._conn.commit()
        return self._conn

    def _execute(self, text: str, parameters: Any = None) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(text, parameters) if parameters else cursor.execute(text)
        return cursor

    def changes(self, segment: Segment, full_refresh: bool) -> Iterator[Item]:
        names, renames = self._attributes(segment)
        diff = self.diff_statement(segment, [(name, renames.get(name, name)) for name in names], full_refresh)
        rows = self.stream_diff(diff, segment.fetch_size)
        return self._changed_items(
            rows, segment.user_id_field, names, renames, full_refresh, skip_nulls=segment.skip_nulls
        )

    def _attributes(self, segment: Segment) -> tuple[list[str], dict[str, str]]:
        """The query's columns that are attributes, and their names at the vendor (``attributes`` renames)."""
        query = self._sql_of(segment)
        self.conn  # noqa: B018  # opens the connection and creates the state table before the diff joins it
        columns = query_columns(self.hook, query, segment.parameters)
        uid = segment.user_id_field
        if uid not in columns:
            raise SourceConfigError(f"the query has no column {uid!r} (user_id_field; columns: {', '.join(columns)})")
        if isinstance(segment.attributes, Mapping):
            names, renames = list(segment.attributes), dict(segment.attributes)
        else:
            names, renames = list(segment.attributes or [c for c in columns if c != uid]), {}
        missing = [name for name in names if name not in columns]
        if missing:
            raise SourceConfigError(f"the query has no column {', '.join(map(repr, missing))} (attributes)")
        return names, renames

    def removal_counts(self, segment: Segment, *, remove_missing: bool) -> RemovalCounts:
        """What the difference would remove, counted by the warehouse: the diff's joins summed
        (``sql.cleared_count_statement``), the leavers' anti-join counted (``sql.leavers_count_statement``).
        No row of the segment leaves the warehouse."""
        cleared = 0
        if not segment.skip_nulls:
            names, renames = self._attributes(segment)
            attributes = [(name, renames.get(name, name)) for name in names]
            (cleared,) = self._counts(sql.cleared_count_statement(*self._against(segment), attributes=attributes))
        removed_users = removed_attributes = 0
        if remove_missing:
            removed_users, removed_attributes = self._counts(sql.leavers_count_statement(*self._against(segment)))
        users, attributes_held = self.size()
        return RemovalCounts(cleared, removed_users, removed_attributes, users, attributes_held)

    def size(self) -> tuple[int, int]:
        users, attributes = self._counts(
            sql.state_size_statement(self.dialect, self.placeholder, self.table, self.state_key)
        )
        return users, attributes

    def _counts(self, statement: sql.Statement) -> tuple[int, ...]:
        """The one row of a counting statement, as integers (engines answer Decimal, int128, or NULL for 0)."""
        cursor = self._execute(statement.sql, statement.parameters)
        rows = cursor.fetchall()  # all of it: an unbuffered driver (mysql-connector) refuses an unread result
        cursor.close()
        return tuple(int(value or 0) for value in rows[0])

    @staticmethod
    def _sql_of(segment: Segment) -> str:
        if not segment.sql:
            raise ValueError("a warehouse state diffs a SQL segment: give sql")
        return segment.sql

    def diff_statement(
        self, segment: Segment, attributes: Sequence[tuple[str, str]], full_refresh: bool
    ) -> sql.Statement:
        """Rows of the segment with a changed attribute, with the previous and current text of each.

        ``attributes``: (column, name at the vendor); the state is kept under the vendor's name.
        """
        return sql.diff_statement(*self._against(segment), attributes=attributes, full_refresh=full_refresh)

    def _against(self, segment: Segment) -> tuple[sql.SqlDialect, str, str, str, Any, str, str]:
        """What every query of the state against a segment is built from."""
        return (
            self.dialect,
            self.placeholder,
            self.table,
            self._sql_of(segment),
            segment.parameters,
            self.state_key,
            segment.user_id_field,
        )

    def stream_diff(self, diff: sql.Statement, fetch_size: int) -> Iterator[Row]:
        """Rows of the diff query, streamed.

        SQLite lets no other connection write while a read is open: with a separate cursor streaming the diff,
        the state writes after each chunk would wait forever (seen at 1M rows). There
        (``SqlDialect.reads_block_writes``), the diff is materialised in a temporary table of the state's own
        connection and read back from it.
        """
        if not self.dialect.reads_block_writes:
            yield from stream_statement(self.hook, diff.sql, diff.parameters, fetch_size)
            return
        self._execute("DROP TABLE IF EXISTS temp.userattrs_diff").close()
        self._execute(f"CREATE TEMP TABLE userattrs_diff AS {diff.sql}", diff.parameters).close()
        cursor = self._execute("SELECT * FROM temp.userattrs_diff ORDER BY rowid")
        columns = [d[0] for d in cursor.description]
        try:
            while rows := cursor.fetchmany(fetch_size):
                for row in rows:
                    yield dict(zip(columns, row, strict=False))
        finally:
            # Also run when the reader is dropped half-way, possibly after close(): nothing to clean then.
            with contextlib.suppress(Exception):
                cursor.close()
                if self._conn is not None:
                    self._conn.execute("DROP TABLE IF EXISTS temp.userattrs_diff")

    @staticmethod
    def _changed_items(
        rows: Iterable[Row],
        user_id_field: str,
        attributes: Sequence[str],
        renames: Mapping[str, str],
        full: bool,
        *,
        skip_nulls: bool = False,
    ) -> Iterator[Item]:
        for position, row in enumerate(rows):
            user_id = row.get(user_id_field)
            values: dict[str, object] = {}
            state: dict[str, str | None] = {}
            for index, name in enumerate(attributes):
                current, previous = row.get(f"__cur_{index}"), row.get(f"__prev_{index}")
                if (current == previous and not full) or (current is None and previous is None):
                    continue
                values[renames.get(name, name)] = row.get(name)
                if current is not None or not skip_nulls:  # a skipped NULL: the state keeps what was delivered
                    state[renames.get(name, name)] = current
            if user_id is None:
                yield Item(position, None, f"field {user_id_field!r} (the user id) is NULL")
            elif values:
                update = UserUpdate(user_id, values)
                yield Item(position, update, state=state, state_user=str(user_id), key=user_id)

    def leavers(self, segment: Segment, start: int) -> Iterator[Item]:
        statement = sql.leavers_statement(*self._against(segment))
        cursor = self._execute(statement.sql, statement.parameters)
        rows: list[tuple[str, str]] = cursor.fetchall()
        cursor.close()
        current: str | None = None
        names: list[str] = []
        position = start
        for user, attribute in rows:
            if user != current and current is not None:
                yield _leaver(position, current, names)
                position += 1
                names = []
            current = user
            names.append(attribute)
        if current is not None:
            yield _leaver(position, current, names)

    def record(self, updates: Sequence[StateUpdate]) -> None:
        if not updates:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        keep = [(self.state_key, u, a, v, now) for u, a, v in updates if v is not None]
        drop = [(self.state_key, u, a) for u, a, v in updates if v is None]
        cursor = self.conn.cursor()
        for statement in sql.upsert_statements(self.dialect, self.placeholder, self.table, _last_per_key(keep)):
            cursor.execute(statement.sql, statement.parameters)
        if drop:
            cursor.executemany(sql.delete_statement(self.dialect, self.placeholder, self.table), drop)
        self.conn.commit()
        cursor.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _last_per_key(rows: Sequence[tuple[str, str, str, str, str]]) -> list[tuple[str, str, str, str, str]]:
    """One row per (state, user, attribute), the last: one multi-row upsert or MERGE may not touch a key twice
    (PostgreSQL: "ON CONFLICT DO UPDATE command cannot affect row a second time"), and duplicates of a user
    in a segment would."""
    latest = {(row[0], row[1], row[2]): row for row in rows}
    return list(latest.values())


class ObjectState(IncrementalState):
    """State of a records-based sync: one JSON document ``{user: {attribute: text}}`` in object storage."""

    def __init__(self, root: str, state_key: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", state_key)
        self.state_key = state_key
        self.path = ObjectStoragePath(root) / "_state" / f"{safe}.json"
        self.values: dict[str, dict[str, str]] = {}
        if self.path.exists():
            self.values = json.loads(self.path.read_text() or "{}")

    @property
    def where(self) -> str:
        return str(self.path)

    def changes(self, segment: Segment, full_refresh: bool) -> Iterator[Item]:
        for item in from_records(segment.rows(), segment.user_id_field, segment.attributes):
            if item.update is None:
                yield item
                continue
            user = str(item.update.user_id)
            known = self.values.get(user, {})
            state = {name: value_text(value) for name, value in item.update.attributes.items()}
            changed = {
                name: value
                for name, value in item.update.attributes.items()
                if (full_refresh or known.get(name) != state[name]) and not (value is None and name not in known)
            }
            if changed:
                update = UserUpdate(item.update.user_id, changed)
                # A NULL skipped (null_values="skip") is not named: the state keeps the value last delivered.
                kept = {n: state[n] for n in changed if state[n] is not None or not segment.skip_nulls}
                yield Item(item.position, update, state=kept, state_user=user)

    def leavers(self, segment: Segment, start: int) -> Iterator[Item]:
        present = {str(r.get(segment.user_id_field)) for r in segment.rows() if isinstance(r, Mapping)}
        for offset, user in enumerate(sorted(set(self.values) - present)):
            yield _leaver(start + offset, user, sorted(self.values[user]))

    def size(self) -> tuple[int, int]:
        return len(self.values), sum(len(attributes) for attributes in self.values.values())

    def record(self, updates: Sequence[StateUpdate]) -> None:
        if not updates:
            return
        for user, attribute, text in updates:
            if text is None:
                self.values.get(user, {}).pop(attribute, None)
                if user in self.values and not self.values[user]:
                    del self.values[user]
            else:
                self.values.setdefault(user, {})[attribute] = text
        write_text_atomically(self.path, json.dumps(self.values))


# -- max_removals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemovalCounts:
    """What one incremental run would remove, counted before its first request."""

    cleared: int
    """Attributes NULL in the segment whose value the state holds: the diff would send their removal (none
    with ``null_values="skip"``)."""
    removed_users: int
    """Users of the state no longer in the segment (``remove_missing``): all their attributes removed."""
    removed_attributes: int
    """The attributes of those users."""
    state_users: int
    """Users the state holds (what this sync has delivered): the base of a ratio."""
    state_attributes: int
    """Attributes the state holds: the base of a ratio."""

    def described(self) -> str:
        """``clear N attributes (x% of ...) and remove M users ...``, as a person reads it."""
        cleared = f"clear {self.cleared:,} attributes{_share(self.cleared, self.state_attributes, 'attributes')}"
        removed = "remove no user"
        if self.removed_users:
            removed = (
                f"remove {self.removed_users:,} users{_share(self.removed_users, self.state_users, 'users')} with "
                f"their {self.removed_attributes:,} attributes"
            )
        return f"{cleared} and {removed}"


def _share(part: int, base: int, unit: str) -> str:
    return f" ({part / base:.1%} of the {base:,} {unit} it has delivered)" if base else ""


class RemovalLimitExceeded(UserAttrsError):
    """An incremental run would remove more than ``max_removals`` allows: stopped before sending anything
    (retrying would count the same)."""


@dataclass(frozen=True)
class RemovalLimit:
    """``max_removals``: how much one incremental run may remove before it is stopped, unsent.

    A number of 1 or more is a **count** (a whole number): at most that many attributes cleared, and at most
    that many users removed. A number between 0 and 1 is a **ratio** of what the state holds (the segment as
    this sync last delivered it): at most that share of its attributes cleared, and of its users removed.
    0 allows no removal at all.
    """

    value: int | float

    @property
    def is_ratio(self) -> bool:
        return 0 < self.value < 1

    @classmethod
    def parse(cls, value: object) -> RemovalLimit | None:
        """``max_removals`` as given, or as a template rendered it (text); None (or "", "None") for no limit.

        :raises ValueError: not a count (a whole number, 0 or more) nor a ratio (between 0 and 1).
        """
        if value is None:
            return None
        number: int | float | None = None
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("", "none", "null"):
                return None
            with contextlib.suppress(ValueError):
                number = int(text)
            if number is None:
                with contextlib.suppress(ValueError):
                    number = float(text)
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            number = int(value) if isinstance(value, int) else float(value)
        if isinstance(number, float) and math.isfinite(number) and number >= 1 and number.is_integer():
            number = int(number)  # 500.0 is the count 500
        if isinstance(number, float) and number == 0:
            number = 0
        if (isinstance(number, int) and number >= 0) or (isinstance(number, float) and 0 < number < 1):
            return cls(number)
        raise ValueError(
            "max_removals must be a count (a whole number, 0 or more, e.g. 500), a ratio of the synced segment "
            f"(between 0 and 1, e.g. 0.05) or None (no limit); got {value!r}"
        )

    def __str__(self) -> str:
        return f"max_removals={self.value}"

    def allowed(self, base: int) -> float:
        """How many removals of something the state holds ``base`` of are allowed."""
        return self.value * base if self.is_ratio else self.value

    def exceeded_by(self, counts: RemovalCounts) -> bool:
        return counts.cleared > self.allowed(counts.state_attributes) or counts.removed_users > self.allowed(
            counts.state_users
        )

    def refusal(self, counts: RemovalCounts) -> str:
        """The message of a run stopped by the limit: the numbers, and what to do."""
        allowed = f"{self.value * 100:g}% of each" if self.is_ratio else f"{self.value:,} of each"
        return (
            f"{self}: this sync would {counts.described()}, more than max_removals allows ({allowed}); nothing "
            "was sent. A truncated source table or a broken join looks like this: check the source first. If the "
            "removals are meant, run once with a higher max_removals (it is templated, e.g. "
            "\"{{ dag_run.conf.get('max_removals', 0.05) }}\"); null_values='skip' never clears an attribute on a "
            "NULL, remove_missing=False never removes a user who left."
        )


def check_removals(
    state: IncrementalState, segment: Segment, limit: RemovalLimit, *, remove_missing: bool, log: Log
) -> RemovalCounts:
    """Count what the run would remove and stop it, before its first request, when ``limit`` is exceeded.

    :raises RemovalLimitExceeded: more attributes cleared, or more users removed, than ``limit`` allows.
    """
    counts = state.removal_counts(segment, remove_missing=remove_missing)
    if limit.exceeded_by(counts):
        raise RemovalLimitExceeded(limit.refusal(counts))
    log.info("%s: this sync will %s, within the limit", limit, counts.described())
    return counts
