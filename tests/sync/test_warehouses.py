"""The source side on every engine that runs here, through one parametrised suite: SQLite, PostgreSQL, DuckDB
and MariaDB, each through its real Airflow provider hook (from an Airflow connection), with the SQL of
``sync/sql.py`` and ``sync/keyset.py``.

Streaming, resume by key (a try killed mid-run, the table's physical order changed, the next try),
incremental sync (first run, unchanged re-run, 1 % changed, a leaver) and its data safety (``max_removals``
counted by the warehouse, ``null_values="skip"``) run on all four.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.errors import SourceConfigError
from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import (
    RemovalCounts,
    RemovalLimit,
    RemovalLimitExceeded,
    Segment,
    WarehouseState,
    check_removals,
)
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.nulls import SkippingNulls
from airflow_provider_userattrs.sync.sources import from_records, keyed_rows, stream_sql
from airflow_provider_userattrs.sync.storage import FailureFolder
from tests.sync.fakes import Crash, FakeClient, FakeVendor

ENGINES = ["sqlite", "postgres", "duckdb", "mariadb"]
CONN_ID = "userattrs_wh_suite"
USERS = 400


@dataclass
class Warehouse:
    """One engine with a fresh ``segment`` table, reachable as the Airflow connection ``CONN_ID``."""

    engine: str
    table: str
    execute: Callable[[str], None]
    reorder: Callable[[], None]
    """Changes the table's physical order (the rows an unordered SELECT returns first)."""
    state_table: str = "userattrs_sync_state"
    quote: str = '"'
    placeholder: str = "?"

    def q(self, name: str) -> str:
        return self.quote + name + self.quote

    def fill(self, rows: Sequence[tuple[Any, ...]], columns: str = "user_id, plan, score") -> None:
        values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
        self.execute(f"INSERT INTO {self.table} ({columns}) VALUES {values}")


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


CREATE = "CREATE TABLE {table} (user_id VARCHAR(64), plan VARCHAR(64), score INTEGER, {q}order{q} VARCHAR(16))"
DQ = '"'
REWRITE_REORDERED = (
    "CREATE TABLE moved AS SELECT * FROM segment ORDER BY score DESC, user_id DESC; DROP TABLE segment; "
    "ALTER TABLE moved RENAME TO segment;"
)
"""SQLite and DuckDB return rows in insertion order: the table rewritten in another one."""


def _sqlite(tmp_path, monkeypatch) -> Iterator[Warehouse]:
    path = tmp_path / "warehouse.db"

    def execute(sql: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.executescript(sql)

    def reorder() -> None:  # SQLite keeps rows in rowid order: rewrite the table in another one
        execute(REWRITE_REORDERED)

    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    execute(CREATE.format(table="segment", q=DQ))
    yield Warehouse("sqlite", "segment", execute, reorder)


def _postgres(request, monkeypatch) -> Iterator[Warehouse]:
    import psycopg2

    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"userattrs_suite_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.segment"

    def execute(sql: str) -> None:
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    def reorder() -> None:  # CLUSTER rewrites the table in the index's order; the updates move rows again
        execute(f"CLUSTER {table} USING segment_score; UPDATE {table} SET plan = plan WHERE score % 3 = 0")
        execute(f"ANALYZE {table}")

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}),
    )
    execute(
        f"CREATE SCHEMA {schema}; {CREATE.format(table=table, q=DQ)}; CREATE INDEX segment_score ON {table} (score)"
    )
    try:
        yield Warehouse(
            "postgres", table, execute, reorder, state_table=f"{schema}.userattrs_sync_state", placeholder="%s"
        )
    finally:
        execute(f"DROP SCHEMA {schema} CASCADE")


def _duckdb(tmp_path, monkeypatch) -> Iterator[Warehouse]:
    import duckdb

    path = str(tmp_path / "warehouse.duckdb")

    def execute(sql: str) -> None:
        with duckdb.connect(path) as conn:
            conn.execute(sql)

    def reorder() -> None:  # DuckDB returns rows in insertion order: rewrite the table in another one
        execute(REWRITE_REORDERED)

    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "duckdb", "host": path}))
    execute(CREATE.format(table="segment", q=DQ))
    yield Warehouse("duckdb", "segment", execute, reorder)


def _mariadb(request, monkeypatch) -> Iterator[Warehouse]:
    import mysql.connector

    server = request.getfixturevalue("mariadb_server")
    database = f"userattrs_suite_{uuid.uuid4().hex[:8]}"

    def execute(sql: str) -> None:
        conn = mysql.connector.connect(**{**server, "database": None}, autocommit=True)
        cursor = conn.cursor()
        for statement in sql.split(";\n"):
            cursor.execute(statement)
        conn.close()

    def reorder() -> None:  # InnoDB without a key keeps insertion order: rewrite the table in another one
        execute(
            f"CREATE TABLE {database}.moved AS SELECT * FROM {database}.segment ORDER BY score DESC, user_id DESC;\n"
            f"DROP TABLE {database}.segment;\nRENAME TABLE {database}.moved TO {database}.segment"
        )

    connection = {
        "conn_type": "mysql",
        "host": server["host"],
        "port": server["port"],
        "login": server["user"],
        "schema": database,
        "extra": {"client": "mysql-connector-python"},  # the provider's pure-Python client (no C build)
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    execute(f"CREATE DATABASE {database};\n{CREATE.format(table=database + '.segment', q='`')}")
    try:
        yield Warehouse("mariadb", f"{database}.segment", execute, reorder, quote="`", placeholder="%s")
    finally:
        execute(f"DROP DATABASE {database}")


@pytest.fixture(params=ENGINES)
def warehouse(request, tmp_path, monkeypatch) -> Iterator[Warehouse]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        yield from _postgres(request, monkeypatch)
    elif request.param == "duckdb":
        yield from _duckdb(tmp_path, monkeypatch)
    elif request.param == "mariadb":
        request.applymarker(pytest.mark.mariadb)
        yield from _mariadb(request, monkeypatch)
    else:
        yield from _sqlite(tmp_path, monkeypatch)


def shuffled_users(count: int = USERS, seed: int = 5) -> list[tuple[str, str, int]]:
    rows = [(f"u{i:05d}", f"plan-{i % 7}", (i * 37) % 101) for i in range(count)]
    random.Random(seed).shuffle(rows)
    return rows


# -- streaming and resume by key ----------------------------------------------------------------------


def test_rows_stream_in_id_order_nulls_first_and_resume_after_any_settled_row(warehouse):
    rows = [*shuffled_users(60), ("u00007", "duplicate", 1), ("u00007", "again", 2), (None, "no id", 3)]
    warehouse.fill(rows)
    sql = f"SELECT user_id, plan, score FROM {warehouse.table}"  # no ORDER BY
    assert len(list(stream_sql(CONN_ID, sql, fetch_size=7))) == len(rows)
    key, ordered = keyed_rows(CONN_ID, sql, None, None, ResumePoint(), fetch_size=7)
    assert key == "user_id"  # no user_id_field (a mass update's ids): the query's first column
    everything = [(r["user_id"], r["plan"]) for r in ordered]
    ids = [user for user, _ in everything]
    assert ids[0] is None and ids[1:] == sorted(ids[1:]) and len(everything) == len(rows)
    raw = [dict(r) for r in keyed_rows(CONN_ID, sql, None, "user_id", ResumePoint())[1]]
    assert [(r["user_id"], r["plan"]) for r in raw] == everything or warehouse.engine == "postgres"
    for settled in (1, 8, 9, 10, 11, 40, len(rows)):  # 8-10 stop inside u00007's three rows
        point = ResumePoint().after([(r["user_id"], r) for r in raw[:settled]])
        everything = [(r["user_id"], r["plan"]) for r in raw]
        _, rest = keyed_rows(CONN_ID, sql, None, "user_id", point, fetch_size=7)
        remaining = [(r["user_id"], r["plan"]) for r in rest]
        assert Counter(remaining) == Counter(everything[settled:]), settled


def test_a_query_with_percent_signs_a_trailing_comment_and_no_parameters_streams_by_key(warehouse):
    warehouse.fill(shuffled_users(30))
    sql = f"SELECT user_id, plan FROM {warehouse.table} WHERE plan LIKE '%-1%' -- a comment at the end;\n;"
    _, rows = keyed_rows(CONN_ID, sql, None, "user_id", ResumePoint())
    expected = sorted(u for u, plan, _ in shuffled_users(30) if plan == "plan-1")
    assert [r["user_id"] for r in rows] == expected


def test_a_query_without_the_user_id_column_fails_before_any_row(warehouse):
    warehouse.fill(shuffled_users(3))
    with pytest.raises(SourceConfigError, match=r"no column 'email'.*user_id, plan"):
        keyed_rows(CONN_ID, f"SELECT user_id, plan FROM {warehouse.table}", None, "email", ResumePoint())


def _keyed_source(table: str) -> Callable[[ResumePoint], Iterator[Any]]:
    def source(point: ResumePoint) -> Iterator[Any]:
        sql = f"SELECT user_id, plan, score FROM {table}"  # written the natural way: no ORDER BY
        _, rows = keyed_rows(CONN_ID, sql, None, "user_id", point, fetch_size=50)
        return from_records(rows, "user_id", None, point.offset, skip=False)

    return source


def test_a_try_killed_mid_run_resumes_by_key_after_the_table_was_physically_reordered(warehouse, tmp_path):
    warehouse.fill(shuffled_users())
    world = FakeVendor()
    checkpoint = MemoryCheckpoint()
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    chunk = 50
    with pytest.raises(Crash):  # the worker dies in the fourth chunk, after 20 of its users were sent
        SyncEngine(FakeClient(world, crash_at_call=3, crash_after_results=20), folder, 1, chunk_size=chunk).run(
            checkpoint, _keyed_source(warehouse.table)
        )
    sent_before = set(world.sends)
    assert len(sent_before) == 3 * chunk + 20
    warehouse.reorder()
    outcome = SyncEngine(FakeClient(world), folder, 2, chunk_size=chunk).run(checkpoint, _keyed_source(warehouse.table))
    everyone = {user for user, _, _ in shuffled_users()}
    assert set(world.stored) == everyone  # nobody skipped
    assert (outcome.total, outcome.succeeded, outcome.failed) == (USERS, USERS, 0)  # each counted once
    resent = [user for user, sends in world.sends.items() if sends > 1]
    assert len(resent) == 20 and all(user in sent_before for user in resent)  # only the chunk in flight


# -- incremental ----------------------------------------------------------------------------------------


def _segment(warehouse: Warehouse, options: dict[str, Any]) -> Segment:
    return Segment(
        "user_id",
        options.pop("attributes", {"plan": "plan", "score": "score", "order": "order number"}),
        lambda: [],
        options.pop("sql", f"SELECT user_id, plan, score, {warehouse.q('order')} FROM {warehouse.table}"),
        options.pop("parameters", None),
        fetch_size=64,
        skip_nulls=options.pop("skip_nulls", False),
    )


def _incremental(warehouse: Warehouse, world: FakeVendor, tmp_path, key: str = "suite.sync", **options: Any):
    segment = _segment(warehouse, options)
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/inc-{uuid.uuid4().hex[:6]}"))
    client: Any = FakeClient(world)
    if segment.skip_nulls:  # null_values="skip", as the operator sets it up
        client = SkippingNulls(client, logging.getLogger(__name__))
    with WarehouseState(CONN_ID, key, table=warehouse.state_table) as state:
        return SyncEngine(client, folder, 1, chunk_size=64).run_incremental(
            state, segment, full_refresh=options.pop("full_refresh", False), remove_missing=True
        )


def test_incremental_first_run_unchanged_rerun_one_percent_changed_and_a_leaver(warehouse, tmp_path):
    users = shuffled_users()
    warehouse.fill(
        [(u, p, s, f"#{i}") for i, (u, p, s) in enumerate(users)], f"user_id, plan, score, {warehouse.q('order')}"
    )
    world = FakeVendor()
    first = _incremental(warehouse, world, tmp_path)
    assert first.incremental is not None and first.incremental.changed_users == USERS
    assert world.stored["u00003"]["order number"].startswith("#")  # a reserved word as a column, renamed
    unchanged = _incremental(warehouse, world, tmp_path)
    assert unchanged.incremental is not None and unchanged.incremental.changed_users == 0
    assert sum(world.sends.values()) == USERS
    changed = sorted(u for u, _, _ in users)[:: USERS // 4][:4]  # 1 %
    warehouse.execute(
        f"UPDATE {warehouse.table} SET score = score + 1000 WHERE user_id IN ({', '.join(map(_literal, changed))})"
    )
    warehouse.execute(f"DELETE FROM {warehouse.table} WHERE user_id = 'u00001'")
    third = _incremental(warehouse, world, tmp_path)
    assert third.incremental is not None
    assert (third.incremental.changed_users, third.incremental.removed_users) == (len(changed), 1)
    assert sum(world.sends.values()) == USERS + len(changed) + 1
    assert all(world.stored[u]["score"] >= 1000 for u in changed)
    assert world.stored["u00001"] == {"plan": None, "score": None, "order number": None}
    assert _incremental(warehouse, world, tmp_path).incremental.changed_users == 0  # type: ignore[union-attr]


def test_incremental_binds_the_state_key_and_query_parameters(warehouse, tmp_path):
    warehouse.fill(shuffled_users(20))
    world = FakeVendor()
    mark = warehouse.placeholder
    sql = f"SELECT user_id, plan, score FROM {warehouse.table} WHERE score >= {mark}"
    options = {"attributes": ["plan", "score"], "sql": sql, "parameters": [50]}
    key = "o'brien; DROP TABLE x --"
    first = _incremental(warehouse, world, tmp_path, key=key, **dict(options))
    expected = sum(1 for _, _, score in shuffled_users(20) if score >= 50)
    assert first.incremental is not None and first.incremental.changed_users == expected
    again = _incremental(warehouse, world, tmp_path, key=key, **dict(options))
    assert again.incremental is not None and again.incremental.changed_users == 0
    other = _incremental(warehouse, world, tmp_path, key="another sync", **dict(options))
    assert other.incremental is not None and other.incremental.changed_users == expected  # keys kept apart


def test_incremental_sees_a_change_of_case_and_keeps_ids_differing_by_case_apart(warehouse, tmp_path):
    warehouse.fill([("u1", "Gold", 1), ("U1", "gold", 2), ("u2", "silver", 3)])
    world = FakeVendor()
    options = {"attributes": ["plan"], "sql": f"SELECT user_id, plan FROM {warehouse.table}"}
    first = _incremental(warehouse, world, tmp_path, **dict(options))
    assert first.incremental is not None and first.incremental.changed_users == 3  # u1 and U1 are two users
    warehouse.execute(f"UPDATE {warehouse.table} SET plan = 'GOLD' WHERE score = 1")  # u1 (MySQL: 'u1' = 'U1')
    second = _incremental(warehouse, world, tmp_path, **dict(options))
    assert second.incremental is not None
    assert (second.incremental.changed_users, second.incremental.removed_users) == (1, 0)
    assert world.stored["u1"]["plan"] == "GOLD" and world.stored["U1"]["plan"] == "gold"


# -- data safety: max_removals, null_values="skip" ------------------------------------------------------


def _filled(warehouse: Warehouse) -> list[str]:
    """The segment of ``USERS`` users with three attributes each; their ids, sorted."""
    users = shuffled_users()
    warehouse.fill(
        [(u, p, s, f"#{i}") for i, (u, p, s) in enumerate(users)], f"user_id, plan, score, {warehouse.q('order')}"
    )
    return sorted(u for u, _, _ in users)


def _in(ids: Sequence[str]) -> str:
    return f"user_id IN ({', '.join(map(_literal, ids))})"


def test_removals_are_counted_by_the_warehouse_as_the_diff_would_send_them(warehouse, tmp_path):
    ids = _filled(warehouse)
    sql = (
        f"SELECT user_id, plan, score, {warehouse.q('order')} FROM {warehouse.table} WHERE COALESCE(score, 0) >= "
        f"{warehouse.placeholder}"
    )
    options = {"sql": sql, "parameters": [0]}  # the user's own bound value comes before the joins' values
    world = FakeVendor()
    _incremental(warehouse, world, tmp_path, **dict(options))
    warehouse.execute(f"UPDATE {warehouse.table} SET plan = NULL WHERE {_in(ids[10:45])}")  # 35 plans
    warehouse.execute(f"UPDATE {warehouse.table} SET score = NULL WHERE {_in(ids[40:45])}")  # and 5 scores
    warehouse.execute(f"DELETE FROM {warehouse.table} WHERE {_in(ids[100:112])}")  # 12 users leave
    warehouse.fill([(None, None, 3)])  # a row without id clears nothing: the diff reports it, never removes
    warehouse.execute(f"UPDATE {warehouse.table} SET score = score + 1 WHERE {_in(ids[200:203])}")  # no removal
    segment = _segment(warehouse, dict(options))
    with WarehouseState(CONN_ID, "suite.sync", table=warehouse.state_table) as state:
        counts = state.removal_counts(segment, remove_missing=True)
        items = list(state.items(segment, full_refresh=False, remove_missing=True))
        skipping = state.removal_counts(dataclasses.replace(segment, skip_nulls=True), remove_missing=True)
        staying = state.removal_counts(segment, remove_missing=False)
    assert counts == RemovalCounts(40, 12, 36, USERS, 3 * USERS)
    # the warehouse's count is what the difference would send: the NULLs of changed users, the leavers
    nulls = [v for i in items if i.update and not i.removal for v in i.update.attributes.values() if v is None]
    assert (len(nulls), sum(1 for i in items if i.removal)) == (counts.cleared, counts.removed_users)
    assert (skipping.cleared, skipping.removed_users) == (0, 12)  # a skipped NULL is no removal
    assert (staying.cleared, staying.removed_users, staying.removed_attributes) == (40, 0, 0)

    sends = sum(world.sends.values())
    with WarehouseState(CONN_ID, "suite.sync", table=warehouse.state_table) as state:
        with pytest.raises(RemovalLimitExceeded, match=r"max_removals=20: .*clear 40 attributes .*remove 12 users"):
            check_removals(state, segment, RemovalLimit(20), remove_missing=True, log=logging.getLogger())
        with pytest.raises(RemovalLimitExceeded, match=r"max_removals=0.03: .*\(3% of each\)"):
            check_removals(state, segment, RemovalLimit(0.03), remove_missing=True, log=logging.getLogger())
        # 40 of 1,200 attributes (3.3 %), 12 of 400 users (3 %): within 5 %
        assert check_removals(state, segment, RemovalLimit(0.05), remove_missing=True, log=logging.getLogger())
    assert sum(world.sends.values()) == sends  # counting sends nothing


def test_skipped_nulls_are_not_sent_the_state_keeps_the_value_and_a_leaver_is_still_removed(warehouse, tmp_path):
    ids = _filled(warehouse)
    world = FakeVendor()
    _incremental(warehouse, world, tmp_path)
    nulled, leaver = ids[:5], ids[5]
    before = {user: dict(world.stored[user]) for user in nulled}
    warehouse.execute(f"UPDATE {warehouse.table} SET plan = NULL WHERE {_in(nulled)}")
    warehouse.execute(f"DELETE FROM {warehouse.table} WHERE user_id = {_literal(leaver)}")
    sends = dict(world.sends)
    outcome = _incremental(warehouse, world, tmp_path, skip_nulls=True)
    assert outcome.incremental is not None
    assert (outcome.incremental.changed_users, outcome.incremental.removed_users) == (5, 1)
    # each user counted once, its NULL counted skipped; nothing of theirs was sent
    assert (outcome.succeeded, outcome.failed, outcome.skipped_attributes) == (6, 0, 5)
    assert all(world.stored[user] == before[user] and world.sends[user] == sends[user] for user in nulled)
    assert world.stored[leaver] == {"plan": None, "score": None, "order number": None}  # remove_missing still
    # the state kept the plan delivered: the same plan coming back is no change, nothing is sent
    for user in nulled:
        plan = before[user]["plan"]
        warehouse.execute(f"UPDATE {warehouse.table} SET plan = {_literal(plan)} WHERE user_id = {_literal(user)}")
    assert _incremental(warehouse, world, tmp_path, skip_nulls=True).total == 0
