"""Row-level results in the warehouse (``results_table``): what each try did to each user's attributes, as rows
a data team can join to the models that produced them.

**Opt-in.** ``results_table="userattrs_sync_results"`` on either operator; nothing is written without it, and
nothing by a dry run (nothing is sent). The table goes to ``results_conn_id``, by default the sync's
``sql_conn_id``; a sync of records or user ids has none, so it must name one (the DAG fails to parse
otherwise, or the task at once when the connection id was a template that rendered empty).

**Rows.** One per (task instance, try, user, attribute), with its outcome (``delivered``, ``rejected``,
``failed``, ``skipped``, ``postponed``), the reason (the vendor's words, through Airflow's secrets masker, cut
at 4,000 characters), ``retryable`` (a transient failure, or an attribute the vendor's quota held back: it is
sent again) and when it was recorded (``recorded_at``, UTC). **Values are never stored**: a value may be
personal data, and the table is meant for a wider audience than the failure files, which keep values so that
a replay can resend them. A record that could not become an update (no user id) has NULL ``user_id`` and
``attribute``, its source ``position``, and the reason.

``results_outcomes``: ``"failures"`` (default) writes the rejected and failed attributes, and, from a second
try or a resumption after a deferral on, the new outcome of every attribute an earlier try (or this one, before
its pause) left with a failure row, so that a transient failure a later try delivered reads as delivered;
``"all"`` writes every outcome (4 rows per user for 4 attributes: mind the size).

**The key.** (dag_id, run_id, task_id, map_index, try_number, user, attribute): a try's rows are its own, and
the latest try of a (user, attribute) tells how it stands. It is stored as one column, ``row_key``, the
table's primary key (:func:`row_key`): 16 hex digits of the task instance, then 16 of (try, user,
attribute), so that the rows of one task instance are one range of the key (a record without a user id is
keyed by its source position).

**Writes.** Chunk by chunk, before the chunk's checkpoint (or incremental state) moves: one multi-row upsert per
500 rows (``MERGE`` of 250 on the cloud warehouses), the statements of ``sync/sql.py`` (the state's upserts,
every value bound), committed per chunk. Memory holds one chunk's rows at most. A key written again (a user the
quota held back, sent after the wait; a chunk resent within the same try) **replaces** its row: upsert, not
append, so a resumed try never duplicates a row; a retried try writes rows under its own ``try_number``.
A failed write fails the try like any warehouse error: the next try resends the chunk and writes its rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow_provider_userattrs.compat import redact
from airflow_provider_userattrs.errors import SourceConfigError
from airflow_provider_userattrs.results import Outcome
from airflow_provider_userattrs.sync import sql
from airflow_provider_userattrs.sync.sources import sql_hook
from airflow_provider_userattrs.sync.storage import writable_text
from airflow_provider_userattrs.sync.tally import ChunkTally, FailureLine

log = logging.getLogger(__name__)

RESULTS_TABLE = "userattrs_sync_results"
"""The name the docs use; ``results_table`` has no default (the table is opt-in)."""
RESULTS_OUTCOMES = ("failures", "all")
FAILURES = frozenset({Outcome.REJECTED.value, Outcome.FAILED.value})
MAX_REASON = 4000
"""Characters of a reason kept: a 16,000-character text would not fit MySQL's TEXT (65,535 bytes) in utf8mb4."""
_HALF_KEY = sql.ROW_KEY_LENGTH // 2
_MASKED_MEMO = 4096
_KEY, _USER, _ATTRIBUTE, _OUTCOME, _POSITION = (
    sql.RESULTS_COLUMNS.index(name) for name in ("row_key", "user_id", "attribute", "outcome", "position")
)


def results_outcomes_mode(value: object) -> str:
    """``results_outcomes`` as one of :data:`RESULTS_OUTCOMES` (case and blanks do not matter).

    :raises ValueError: any other value.
    """
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in RESULTS_OUTCOMES:
        raise ValueError(f"results_outcomes must be 'failures' or 'all', got {value!r}")
    return str(mode)


def results_connection(results_table: object, results_conn_id: object, sql_conn_id: object) -> str | None:
    """The connection the results table goes to: ``results_conn_id``, else ``sql_conn_id``; None without a table.

    :raises ValueError: a table and no connection (a records or user-ids source has no ``sql_conn_id``).
    """
    if not results_table:
        return None
    conn_id = results_conn_id or sql_conn_id
    if not conn_id:
        raise ValueError(
            f"results_table={results_table!r} needs a SQL connection to write to: set results_conn_id (it "
            "defaults to sql_conn_id, and a sync of records or user_ids has none)"
        )
    return str(conn_id)


def check_results_table(table: str) -> str:
    """``table`` when it is a plain ``[catalog.][schema.]table`` name.

    :raises ValueError: anything else (the name is quoted into SQL, never bound).
    """
    try:
        return sql.check_table_name(table)
    except ValueError:
        raise ValueError(f"results_table {table!r} is not a plain [catalog.][schema.]table name") from None


@dataclass(frozen=True)
class TaskTry:
    """The task instance and try whose outcomes are written."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @cached_property
    def prefix(self) -> str:
        """The first half of every row key of this task instance (whatever the try)."""
        return _digest(self.dag_id, self.run_id, self.task_id, str(self.map_index))


def _digest(*parts: str) -> str:
    text = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=_HALF_KEY // 2).hexdigest()


def row_key(task: TaskTry, try_number: int, user_id: object, attribute: object, position: object = None) -> str:
    """The row's primary key: the task instance's :attr:`TaskTry.prefix`, then a digest of (try, user,
    attribute). A record without a user id is keyed by its ``position`` in the source."""
    user = f"u:{user_id}" if user_id is not None else f"p:{position}"
    name = f"a:{attribute}" if attribute is not None else "-"
    return task.prefix + _digest(str(try_number), user, name)


class ResultsTable:
    """The results table of one try, written chunk by chunk (the engine's ``results`` sink).

    :param conn_id: the Airflow SQL connection the table lives in.
    :param table: ``[catalog.][schema.]table``, created on first use.
    :param task: the task instance and try.
    :param outcomes: ``"failures"`` or ``"all"`` (see the module's docstring).
    """

    def __init__(self, conn_id: str, table: str, task: TaskTry, *, outcomes: str = "failures", log: Any = log) -> None:
        self.conn_id = conn_id
        self.table = check_results_table(table)
        self.task = task
        self.all_outcomes = results_outcomes_mode(outcomes) == "all"
        self.log = log
        self.rows_written = 0
        self.earlier_rows = False
        """This task instance already has rows (a retried or resumed try): the outcomes of the attributes they
        name are written whatever they are, so that the latest try tells how each stands."""
        self._conn: Any = None
        self._reasons: dict[str, str] = {}

    @property
    def where(self) -> str:
        return f"{self.table} ({self.conn_id})"

    def open(self) -> ResultsTable:
        """Connect, create the table if needed, and look for rows of earlier tries. Called before the sync reads
        its source: on SQLite the connection must switch to WAL before anyone reads (``writes_beside_reads``)."""
        self.hook: Any = sql_hook(self.conn_id)
        self.dialect = sql.dialect_of(self.hook)
        if self.dialect.upsert is None:
            raise SourceConfigError(
                f"connection {self.conn_id!r}: the results table is written with SQL this provider knows for "
                f"{', '.join(sorted(sql.DIALECTS))}, not dialect {self.dialect.name!r}. If the engine speaks one "
                'of them, set the connection\'s extra {"dialect": "<name>"}; otherwise set results_conn_id to a '
                "connection of a known engine."
            )
        self.placeholder: str = self.hook.placeholder
        self._conn = self.hook.get_conn()
        if self.dialect.writes_beside_reads:
            mode = self._fetch(self.dialect.writes_beside_reads)
            if mode and str(mode[0][0]).lower() != "wal":
                self.log.warning(
                    "Results table: %s answered %s; writes may wait for the sync's reads", self.where, mode
                )
        self._create()
        if not self.all_outcomes:
            prefix = self.task.prefix
            found = self._fetch(
                sql.results_range_statement(self.dialect, self.placeholder, self.table), [prefix, prefix + "g"]
            )
            self.earlier_rows = bool(found and found[0][0] is not None)
        self.log.info(
            "Results table: %s of this try go to %s%s",
            "every outcome" if self.all_outcomes else "the failures",
            self.where,
            " (rows of an earlier try or of this one before a pause exist: their attributes' new outcomes too)"
            if self.earlier_rows
            else "",
        )
        return self

    def _create(self) -> None:
        statement = sql.create_results_table(self.dialect, self.table)
        try:
            self._run(statement)
        except Exception:
            # Mapped tasks creating it at once: PostgreSQL's IF NOT EXISTS can still collide on the type. The
            # second attempt sees the table (or raises the real error).
            self._conn.rollback()
            self._run(statement)
        self._conn.commit()

    def _run(self, text: str, parameters: Any = None) -> None:
        cursor = self._conn.cursor()
        cursor.execute(text, parameters) if parameters else cursor.execute(text)
        cursor.close()

    def _fetch(self, text: str, parameters: Any = None) -> list[Any]:
        cursor = self._conn.cursor()
        cursor.execute(text, parameters) if parameters else cursor.execute(text)
        rows: list[Any] = cursor.fetchall()  # all of it: an unbuffered driver refuses an unread result
        cursor.close()
        return rows

    @property
    def every_outcome(self) -> bool:
        """Whether the engine keeps every attribute's outcome of a chunk (else its failure lines suffice)."""
        return self.all_outcomes or self.earlier_rows

    def write(self, tally: ChunkTally) -> None:
        """Record what one chunk settled (one commit), before its checkpoint moves."""
        if self._conn is None:
            self.open()
        lines: Iterable[FailureLine] = (
            tally.outcomes
            if tally.outcomes is not None
            else [*tally.rejected_lines, *tally.transient_lines, *tally.postponed_lines]
        )
        recorded_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = [self._row(line, recorded_at) for line in lines]
        if not self.all_outcomes:
            rows = list(self._failures_and_resolutions(rows))
        unique = list({row[_KEY]: row for row in rows}.values())  # one key once per statement; the last line wins
        if not unique:
            return
        cursor = self._conn.cursor()
        for statement in sql.results_upsert_statements(self.dialect, self.placeholder, self.table, unique):
            cursor.execute(statement.sql, statement.parameters)
        self._conn.commit()
        cursor.close()
        self.rows_written += len(unique)

    def _failures_and_resolutions(self, rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """The failure rows, and the rows of attributes that already have one (of any try so far)."""
        others = [row for row in rows if row[_OUTCOME] not in FAILURES]
        known = self._known_keys(others) if self.earlier_rows and others else set()
        for row in rows:
            if row[_OUTCOME] in FAILURES or row[_KEY] in known:
                yield row

    def _known_keys(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """The keys of ``rows`` whose (user, attribute) has a row of this try or an earlier one."""
        tries = range(1, self.task.try_number + 1)
        candidates: dict[str, str] = {}  # an earlier try's key -> this try's
        for row in rows:
            for number in tries:
                candidates[row_key(self.task, number, row[_USER], row[_ATTRIBUTE], row[_POSITION])] = row[_KEY]
        found: set[str] = set()
        for statement in sql.results_keys_statements(self.dialect, self.placeholder, self.table, list(candidates)):
            found.update(candidates[str(key)] for (key,) in self._fetch(statement.sql, statement.parameters))
        return found

    def _row(self, line: FailureLine, recorded_at: str) -> tuple[Any, ...]:
        task = self.task
        user = line.get("user_id")
        attribute = line.get("attribute")
        outcome = str(line.get("outcome"))
        position = line.get("position")
        user_text = writable_text(str(user)) if user is not None else None
        attribute_text = writable_text(str(attribute)) if attribute is not None else None
        return (
            row_key(task, task.try_number, user_text, attribute_text, position),
            task.dag_id,
            task.run_id,
            task.task_id,
            task.map_index,
            task.try_number,
            user_text,
            attribute_text,
            outcome,
            self._reason(line.get("reason")),
            outcome in (Outcome.FAILED.value, Outcome.POSTPONED.value),
            str(line.get("vendor") or ""),
            int(position) if isinstance(position, int) else None,
            recorded_at,
        )

    def _reason(self, reason: object) -> str | None:
        """The vendor's words, secrets masked, cut at :data:`MAX_REASON` (remembered: a chunk shares a few)."""
        if reason is None:
            return None
        text = str(reason)
        shown = self._reasons.get(text)
        if shown is None:
            shown = writable_text(str(redact(text)))[:MAX_REASON]
            if len(self._reasons) < _MASKED_MEMO:
                self._reasons[text] = shown
        return shown

    def close(self) -> None:
        """Close the connection, and say in the log how many rows this run of the try wrote."""
        if self._conn is None:
            return
        try:
            self._conn.close()
        finally:
            self._conn = None
        self.log.info("Results table: %d rows written to %s", self.rows_written, self.where)


def results_table_of_try(
    ti: Any,
    map_index: int,
    *,
    table: object,
    outcomes: object,
    conn_id: object,
    sql_conn_id: object,
    log: Any = log,
) -> ResultsTable | None:
    """The results table of the try ``ti`` runs (not opened yet), from the operator's rendered parameters; None
    without ``results_table`` (or one that rendered empty).

    :raises AirflowFailException: ``results_outcomes`` or the table's name cannot be read, or there is no
        connection to write to: a retry would render the same.
    """
    from airflow_provider_userattrs.compat import AirflowFailException

    try:
        connection = results_connection(table, conn_id, sql_conn_id)
        if connection is None:
            return None
        task = TaskTry(str(ti.dag_id), str(ti.run_id), str(ti.task_id), map_index, int(ti.try_number or 1))
        return ResultsTable(connection, str(table), task, outcomes=results_outcomes_mode(outcomes), log=log)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
