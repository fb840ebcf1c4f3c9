"""The results table (``results_table``) on every engine that runs here, with the fixtures of the warehouse suite
(SQLite, PostgreSQL, DuckDB, MariaDB through their Airflow provider hooks), and its SQL for the others.

What is checked: the rows a sync writes (failures by default, every outcome when asked, never a value), chunk by
chunk; a retried try's rows under its own try number, with the new outcome of what an earlier try failed; a
resumed (deferred) try and a chunk written twice replacing rows instead of adding them; the README's query.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlglot
from airflow.sdk import ObjectStoragePath
from sqlglot import expressions
from sqlglot.errors import ErrorLevel

from airflow_provider_userattrs import compat
from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.errors import SourceConfigError
from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from airflow_provider_userattrs.sync import sql
from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import Segment, WarehouseState
from airflow_provider_userattrs.sync.results_table import (
    ResultsTable,
    TaskTry,
    results_table_of_try,
    row_key,
)
from airflow_provider_userattrs.sync.sources import sql_hook
from airflow_provider_userattrs.sync.storage import FailureFolder
from airflow_provider_userattrs.sync.tally import ChunkTally
from tests.conftest import REPO_ROOT
from tests.sync.fakes import Crash, CrashingCheckpoint, FakeClient, FakeVendor
from tests.sync.test_warehouses import (
    CONN_ID,
    Warehouse,
    _keyed_source,
    shuffled_users,
)
from tests.sync.test_warehouses import warehouse as suite_warehouse  # noqa: F401  # registers the suite's fixture

USERS = 200
CHUNK = 50
INVALID = ("u00003", "u00060", "u00120")
"""Their plan is refused by the validator ("plan is invalid"): one in each of the first three chunks."""
TRANSIENT = ("u00010", "u00150")
"""Both attributes fail transiently once ("HTTP 503")."""
NAMELESS = "field 'user_id' (the user id) is NULL"


@pytest.fixture
def warehouse(suite_warehouse: Warehouse) -> Warehouse:  # noqa: F811  # the import registers it
    """The warehouse suite's engine (SQLite, PostgreSQL, DuckDB, MariaDB), a fresh segment table in it."""
    return suite_warehouse


def table_of(warehouse: Warehouse) -> str:
    return warehouse.state_table.replace("userattrs_sync_state", "userattrs_sync_results")


def fetch(text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    conn = sql_hook(CONN_ID).get_conn()
    try:
        cursor = conn.cursor()
        cursor.execute(text)
        columns = [str(d[0]) for d in cursor.description]
        rows = [tuple(row) for row in cursor.fetchall()]
        cursor.close()
        return columns, rows
    finally:
        conn.close()


def stored(warehouse: Warehouse) -> list[dict[str, Any]]:
    columns, rows = fetch(f"SELECT * FROM {table_of(warehouse)}")
    out = [dict(zip(columns, row, strict=True)) for row in rows]
    for row in out:
        row["retryable"] = bool(row["retryable"])  # MySQL and SQLite answer 1/0
    return sorted(out, key=lambda r: (r["try_number"], str(r["user_id"]), str(r["attribute"])))


def readme_query() -> str:
    """The README's query of today's failures by reason (the one SQL block naming the table)."""
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```sql\n(.*?)```", readme, re.DOTALL) if "userattrs_sync_results" in b]
    assert len(blocks) == 1, "README shows one query of the results table"
    return blocks[0].strip().rstrip(";")


def failures_by_reason(warehouse: Warehouse) -> dict[str, int]:
    """The README's query run on the suite's table: reason -> attributes."""
    columns, rows = fetch(readme_query().replace("userattrs_sync_results", table_of(warehouse)))
    assert columns[:4] == ["reason", "outcome", "attributes", "users"]
    return {str(row[0]): int(row[2]) for row in rows}


def fill(warehouse: Warehouse) -> None:
    rows = [(u, "INVALID" if u in INVALID else p, s) for u, p, s in shuffled_users(USERS)]
    warehouse.fill([*rows, (None, "plan-1", 5)])


@contextmanager
def results(warehouse: Warehouse, try_number: int = 1, outcomes: str = "failures") -> Iterator[ResultsTable]:
    table = ResultsTable(CONN_ID, table_of(warehouse), TaskTry("dag", "run", "task", -1, try_number), outcomes=outcomes)
    try:
        yield table.open()
    finally:
        table.close()


def sync(
    warehouse: Warehouse,
    tmp_path,
    world: FakeVendor,
    *,
    try_number: int = 1,
    outcomes: str = "failures",
    checkpoint: MemoryCheckpoint | None = None,
    client: Any = None,
) -> Any:
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    with results(warehouse, try_number, outcomes) as table:
        engine = SyncEngine(client or FakeClient(world), folder, try_number, chunk_size=CHUNK, results=table)
        return engine.run(checkpoint or MemoryCheckpoint(), _keyed_source(warehouse.table))


# -- on every engine ------------------------------------------------------------------------------------


class WatchingClient(FakeClient):
    """Counts the table's rows when its third chunk is sent: the first two chunks' rows are there already."""

    def __init__(self, world: FakeVendor, table: str) -> None:
        super().__init__(world)
        self.table = table
        self.rows_before_third_chunk: int | None = None

    def update_users(self, updates):  # type: ignore[no-untyped-def]
        if self.calls == 2:
            self.rows_before_third_chunk = int(fetch(f"SELECT COUNT(*) FROM {self.table}")[1][0][0])
        return super().update_users(updates)


def test_failures_are_written_chunk_by_chunk_with_reason_and_retryable_and_never_a_value(warehouse, tmp_path):
    """Also SQLite's WAL: the table is written while the sync's query, on the same file, is still being read."""
    fill(warehouse)
    world = FakeVendor(transient=dict.fromkeys(TRANSIENT, 1))
    client = WatchingClient(world, table_of(warehouse))
    outcome = sync(warehouse, tmp_path, world, client=client)
    assert (outcome.failed, outcome.retryable_users) == (len(INVALID) + 1 + len(TRANSIENT), len(TRANSIENT))
    # chunk 1: the nameless record, u00003's plan, u00010's two attributes; chunk 2: u00060's plan
    assert client.rows_before_third_chunk == 5
    rows = stored(warehouse)
    columns, _ = fetch(f"SELECT * FROM {table_of(warehouse)}")
    assert tuple(columns) == sql.RESULTS_COLUMNS  # no value column: nothing of a value is stored
    assert not any("INVALID" in str(value) for row in rows for value in row.values())
    seen = {(r["user_id"], r["attribute"]): (r["outcome"], r["reason"], r["retryable"]) for r in rows}
    assert seen == {
        (None, None): ("rejected", NAMELESS, False),
        **{(u, "plan"): ("rejected", "plan is invalid", False) for u in INVALID},
        **{(u, a): ("failed", "HTTP 503", True) for u in TRANSIENT for a in ("plan", "score")},
    }
    assert {(r["dag_id"], r["run_id"], r["task_id"], r["map_index"], r["try_number"], r["vendor"]) for r in rows} == {
        ("dag", "run", "task", -1, 1, "fake")
    }
    nameless = next(r for r in rows if r["user_id"] is None)
    assert nameless["position"] == 0 and all(r["recorded_at"] for r in rows)
    assert failures_by_reason(warehouse) == {"HTTP 503": 4, "plan is invalid": 3, NAMELESS: 1}


def test_every_outcome_when_asked(warehouse, tmp_path):
    fill(warehouse)
    sync(warehouse, tmp_path, FakeVendor(), outcomes="all")
    rows = stored(warehouse)
    assert len(rows) == USERS * 2 + 1
    assert Counter(r["outcome"] for r in rows) == {"delivered": USERS * 2 - len(INVALID), "rejected": len(INVALID) + 1}
    delivered = next(r for r in rows if r["user_id"] == "u00004" and r["attribute"] == "score")
    assert (delivered["reason"], delivered["retryable"]) == (None, False)


def test_a_retried_try_writes_its_own_rows_and_the_new_outcome_of_what_an_earlier_try_failed(warehouse, tmp_path):
    fill(warehouse)
    world = FakeVendor(transient=dict.fromkeys(TRANSIENT, 1))
    checkpoint = MemoryCheckpoint()
    sync(warehouse, tmp_path, world, checkpoint=checkpoint)
    first = stored(warehouse)
    assert failures_by_reason(warehouse)["HTTP 503"] == 4
    second = sync(warehouse, tmp_path, world, try_number=2, checkpoint=checkpoint)
    assert second.retryable_users == 0
    rows = stored(warehouse)
    assert [r for r in rows if r["try_number"] == 1] == first  # an earlier try's rows stay as it wrote them
    # failures only, but what try 1 failed and try 2 delivered is written: the latest try tells how it stands
    assert {(r["user_id"], r["attribute"], r["outcome"]) for r in rows if r["try_number"] == 2} == {
        (u, a, "delivered") for u in TRANSIENT for a in ("plan", "score")
    }
    assert failures_by_reason(warehouse) == {"plan is invalid": 3, NAMELESS: 1}


def test_a_try_killed_after_writing_a_chunk_adds_no_row_to_its_own_and_is_counted_once(warehouse, tmp_path):
    fill(warehouse)
    world = FakeVendor()
    checkpoint = CrashingCheckpoint(crash_at=1)  # the second chunk's rows are written, its checkpoint is not
    with pytest.raises(Crash):
        sync(warehouse, tmp_path, world, checkpoint=checkpoint)
    assert {r["user_id"] for r in stored(warehouse)} == {None, "u00003", "u00060"}
    sync(warehouse, tmp_path, world, try_number=2, checkpoint=checkpoint)  # resends the second chunk
    rows = stored(warehouse)
    assert Counter((r["user_id"], r["try_number"]) for r in rows) == {
        (None, 1): 1,
        ("u00003", 1): 1,
        ("u00060", 1): 1,
        ("u00060", 2): 1,
        ("u00120", 2): 1,
    }
    assert failures_by_reason(warehouse) == {"plan is invalid": 3, NAMELESS: 1}  # u00060 once: its latest try


def test_a_resumed_try_replaces_what_it_wrote_before_its_pause(warehouse, tmp_path):
    fill(warehouse)
    world = FakeVendor(postponed={"u00070": 1}, not_before=time.time() + 3600)
    checkpoint = MemoryCheckpoint()
    paused = sync(warehouse, tmp_path, world, outcomes="all", checkpoint=checkpoint)
    assert paused.paused and paused.resume_at is not None
    held = [r for r in stored(warehouse) if r["user_id"] == "u00070"]
    assert {(r["outcome"], r["retryable"]) for r in held} == {("postponed", True)}
    resumed = sync(warehouse, tmp_path, world, outcomes="all", checkpoint=checkpoint)  # the same try, after the wait
    assert not resumed.paused and resumed.total == USERS + 1
    rows = stored(warehouse)
    assert len(rows) == USERS * 2 + 1  # one row per (try, user, attribute): replaced, not added
    assert {r["outcome"] for r in rows if r["user_id"] == "u00070"} == {"delivered"}


def test_a_resumed_incremental_try_turns_its_own_failure_rows_into_what_the_resend_did(warehouse, tmp_path):
    warehouse.fill(shuffled_users(120))
    world = FakeVendor(transient={"u00005": 1})
    checkpoint = MemoryCheckpoint()
    segment = Segment("user_id", ["plan", "score"], list, f"SELECT user_id, plan, score FROM {warehouse.table}")
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/inc"))

    def run(pause: bool) -> Any:
        with WarehouseState(CONN_ID, "suite", table=warehouse.state_table) as state, results(warehouse) as table:
            engine = SyncEngine(
                FakeClient(world), folder, 1, chunk_size=CHUNK, results=table, should_pause=lambda: pause
            )
            return engine.run_incremental(
                state, segment, full_refresh=False, remove_missing=False, checkpoint=checkpoint
            )

    assert run(pause=True).paused  # after the first chunk, u00005 failed transiently
    assert {(r["user_id"], r["outcome"]) for r in stored(warehouse)} == {("u00005", "failed")}
    run(pause=False)  # the difference brings u00005 back, in the same try
    rows = stored(warehouse)
    assert {(r["user_id"], r["attribute"], r["try_number"], r["outcome"]) for r in rows} == {
        ("u00005", "plan", 1, "delivered"),
        ("u00005", "score", 1, "delivered"),
    }
    assert failures_by_reason(warehouse) == {}


def test_a_chunk_written_twice_replaces_its_rows(warehouse):
    def tally(reason: str) -> ChunkTally:
        lines = [
            {
                "position": i,
                "vendor": "fake",
                "user_id": f"u{i}",
                "attribute": "plan",
                "outcome": "rejected",
                "reason": reason,
            }
            for i in range(700)  # two statements
        ]
        return ChunkTally(rejected_lines=lines)

    with results(warehouse) as table:
        table.write(tally("first"))
        table.write(tally("second"))
    rows = stored(warehouse)
    assert len(rows) == 700 and {r["reason"] for r in rows} == {"second"}


# -- SQL of every dialect, and the table's checks --------------------------------------------------------


def result_rows(count: int) -> list[tuple[Any, ...]]:
    task = TaskTry("dag", "run", "task", 3, 1)
    return [
        (row_key(task, 1, f"u{i}", "plan"), "dag", "run", "task", 3, 1, f"u{i}", "plan", "rejected", "secret-ish",
         False, "dx", i, "2026-11-26 10:00:00.000000")
        for i in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(sql.DIALECTS))
def test_the_results_statements_bind_every_value_batch_rows_and_parse_where_they_do_not_run(name):
    """The four local engines run them in the suite above; the cloud warehouses' are parsed by sqlglot."""
    dialect = sql.DIALECTS[name]
    table = "analytics.userattrs_sync_results"
    upserts = sql.results_upsert_statements(dialect, "?", table, result_rows(1200))
    statements = [
        sql.create_results_table(dialect, table),
        *(s.sql for s in upserts),
        *(s.sql for s in sql.results_keys_statements(dialect, "?", table, ["k1", "k2", "k3"])),
        sql.results_range_statement(dialect, "?", table),
    ]
    for text in statements:
        assert "secret-ish" not in text and "u7" not in text
        if name in ("snowflake", "bigquery", "redshift", "databricks", "mysql"):
            assert sqlglot.parse_one(text, read=dialect.name, error_level=ErrorLevel.RAISE) is not None
    if dialect.array_param is not None:  # PostgreSQL, DuckDB: one array per column, 10,000 rows a statement
        assert [[len(column) for column in s.parameters or []] for s in upserts] == [[1200] * 14]
        return
    per_statement = 250 if dialect.upsert == "merge" else 500
    batches = [len(s.parameters or []) // len(sql.RESULTS_COLUMNS) for s in upserts]
    assert batches == [min(per_statement, 1200 - start) for start in range(0, 1200, per_statement)]
    if dialect.upsert == "merge":
        assert isinstance(sqlglot.parse_one(upserts[0].sql, read=dialect.name), expressions.Merge)


@pytest.mark.parametrize("name", ["snowflake", "redshift", "bigquery", "databricks"])
def test_the_results_merge_runs_on_duckdb_as_generated_or_transpiled(name):
    import duckdb

    dialect = sql.DIALECTS[name]
    conn = duckdb.connect()
    transpile = dialect.quote != '"'
    conn.execute(sql.create_results_table(sql.DIALECTS["duckdb"], "results"))
    for rows in (result_rows(300), [(*result_rows(1)[0][:8], "delivered", None, *result_rows(1)[0][10:])]):
        for statement in sql.results_upsert_statements(dialect, "?", "results", rows):
            text = (
                sqlglot.transpile(statement.sql, read=dialect.name, write="duckdb")[0] if transpile else statement.sql
            )
            conn.execute(text, statement.parameters)
    assert conn.execute("SELECT count(*), min(outcome) FROM results WHERE user_id = 'u0'").fetchone() == (
        1,
        "delivered",
    )
    assert conn.execute("SELECT count(*) FROM results").fetchone() == (300,)


def test_row_keys_tell_tries_users_and_attributes_apart_and_group_a_task_instance():
    task = TaskTry("dag", "run", "task", 0, 2)
    keys = {row_key(task, t, u, a) for t in (1, 2) for u in ("u1", "U1", 1, "1") for a in ("plan", None)}
    assert len(keys) == 2 * 3 * 2  # ids differing by case are two users; the int 1 and the text "1" are one
    assert row_key(task, 1, None, None, position=4) != row_key(task, 1, None, None, position=5)
    other = TaskTry("dag", "run", "task", 1, 2)
    assert all(k.startswith(task.prefix) and len(k) == sql.ROW_KEY_LENGTH for k in keys)
    assert not row_key(other, 1, "u1", "plan").startswith(task.prefix)


def test_a_reason_quoting_a_secret_is_masked_and_a_long_one_is_cut(tmp_path, monkeypatch):
    token = "results-table-token-3c1d9f"
    compat.mask_secret(token)
    monkeypatch.setenv("AIRFLOW_CONN_RESULTS_SQLITE", f'{{"conn_type": "sqlite", "host": "{tmp_path / "r.db"}"}}')
    table = ResultsTable("results_sqlite", "results", TaskTry("d", "r", "t", -1, 1)).open()
    lines = [
        {"user_id": "u1", "attribute": "a", "outcome": "rejected", "reason": f"Invalid token {token}"},
        {"user_id": "u2", "attribute": "a", "outcome": "rejected", "reason": "x" * 10_000},
    ]
    table.write(ChunkTally(rejected_lines=lines))  # type: ignore[arg-type]
    table.close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        reasons = dict(conn.execute("SELECT user_id, reason FROM results").fetchall())
    assert token not in reasons["u1"] and "***" in reasons["u1"]
    assert len(reasons["u2"]) == 4000


def test_an_engine_whose_sql_is_unknown_is_refused_naming_what_to_do(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_RESULTS_ODD", '{"conn_type": "sqlite", "host": "/tmp/x.db", "extra": {"dialect": "odd"}}'
    )
    with pytest.raises(SourceConfigError, match=r"results table .* dialect 'odd'.*results_conn_id"):
        ResultsTable("results_odd", "results", TaskTry("d", "r", "t", -1, 1)).open()


# -- the operators' parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("operator", [UpdateUserAttributesOperator, MassUpdateOperator])
def test_the_parameters_are_templated_and_checked_when_the_dag_is_parsed(operator):
    source = {"records": [{"user_id": "u1", "plan": "x"}]}
    if operator is MassUpdateOperator:
        source = {"user_ids": ["u1"], "attribute": "plan", "value": "x"}
    base = {"task_id": "t", "conn_id": "dx_default", **source}
    assert {"results_table", "results_outcomes", "results_conn_id"} <= set(operator.template_fields)
    with pytest.raises(ValueError, match=r"results_table='r' needs a SQL connection to write to: set results_conn_id"):
        operator(**base, results_table="r")
    with pytest.raises(ValueError, match="results_outcomes must be 'failures' or 'all', got 'everything'"):
        operator(**base, results_table="r", results_conn_id="wh", results_outcomes="everything")
    with pytest.raises(ValueError, match="not a plain"):
        operator(**base, results_table="r; DROP TABLE x", results_conn_id="wh")
    task = operator(**base, results_table="r", results_conn_id="wh", results_outcomes="{{ params.outcomes }}")
    assert (task.results_table, task.results_conn_id) == ("r", "wh")
    plain = operator(**base)  # no table: nothing to write, nothing asked
    assert plain.results_table is None and plain.results_outcomes == "failures"


class FakeTi:
    dag_id, run_id, task_id, try_number = "d", "r", "t", 2


def test_the_rendered_parameters_are_read_once_the_task_runs():
    table = results_table_of_try(FakeTi(), 4, table="s.r", outcomes=" ALL ", conn_id=None, sql_conn_id="wh")
    assert table is not None and table.all_outcomes and table.conn_id == "wh"
    assert (table.task.map_index, table.task.try_number) == (4, 2)
    assert results_table_of_try(FakeTi(), -1, table="", outcomes="failures", conn_id=None, sql_conn_id=None) is None
    with pytest.raises(AirflowFailException, match="results_outcomes must be"):
        results_table_of_try(FakeTi(), -1, table="r", outcomes="some", conn_id="wh", sql_conn_id=None)
    with pytest.raises(AirflowFailException, match="needs a SQL connection"):
        results_table_of_try(FakeTi(), -1, table="r", outcomes="all", conn_id="", sql_conn_id=None)
