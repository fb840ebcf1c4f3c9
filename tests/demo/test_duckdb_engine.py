"""DuckDB as a warehouse engine, the way a DAG reaches it: an Airflow connection of type ``duckdb`` whose hook
is the real ``airflow-provider-duckdb`` one (a common-sql ``DbApiHook``), found by Airflow through the
provider's entry point. DuckDB is embedded, so none of this is ever skipped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import duckdb
import pytest
from duckdb_provider.hooks.duckdb_hook import DuckDBHook

from airflow_provider_userattrs.demo.segments import attributes_table, plan_chunks, segment_ids_sql
from airflow_provider_userattrs.demo.warehouse import USER_ATTRIBUTES_COLUMNS, build_warehouse
from airflow_provider_userattrs.sync.sources import sql_hook, stream_sql

CONN_ID = "userattrs_duckdb_wh"
USERS = 300
ALL_ATTRIBUTES = "SELECT * FROM user_attributes ORDER BY user_id"


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 300-user dirty warehouse in DuckDB and in SQLite."""
    folder = tmp_path_factory.mktemp("duckdb-engine")
    duck, lite = folder / "wh.duckdb", folder / "wh.db"
    build_warehouse(str(duck), users=USERS, seed=7)
    build_warehouse(str(lite), users=USERS, seed=7)
    return duck, lite


@pytest.fixture
def duck_conn(warehouses: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``CONN_ID`` as users write it: the DuckDB file's path as host."""
    duck, _ = warehouses
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "duckdb", "host": str(duck)}))
    yield duck


def _sqlite_rows(path: Path, sql: str = ALL_ATTRIBUTES) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_provider_is_discovered_through_its_entry_point() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    providers = {ep.dist.name for ep in entry_points(group="apache_airflow_provider") if ep.dist is not None}
    assert "airflow-provider-duckdb" in providers
    hook_info = ProvidersManagerTaskRuntime().hooks["duckdb"]  # type: ignore[no-untyped-call]
    assert hook_info is not None
    assert hook_info.hook_class_name == "duckdb_provider.hooks.duckdb_hook.DuckDBHook"
    assert hook_info.package_name == "airflow-provider-duckdb"


def test_the_connection_gives_the_duckdb_hook(duck_conn: Path) -> None:
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(CONN_ID)
    assert connection.conn_type == "duckdb"
    hook = connection.get_hook()  # type: ignore[no-untyped-call]
    assert type(hook) is DuckDBHook
    assert hook.placeholder == "?"
    assert hook.dialect_name == "duckdb"  # from the SQLAlchemy dialect duckdb-engine registers
    assert hook.get_uri() == f"duckdb:///{duck_conn}"
    assert sql_hook(CONN_ID).__class__ is DuckDBHook
    conn = hook.get_conn()
    try:
        assert isinstance(conn, duckdb.DuckDBPyConnection)
        assert conn.execute("SELECT COUNT(*) FROM user_attributes").fetchone() == (USERS,)
    finally:
        conn.close()
    # the common-sql API on top of it, with "?" parameters
    assert hook.get_first("SELECT email FROM user_attributes WHERE user_id = ?", parameters=["u000001"]) == (
        "marco.rossi1@example.com",
    )


def test_stream_sql_reads_the_view_as_sqlite_returns_it(duck_conn: Path, warehouses: tuple[Path, Path]) -> None:
    _, lite = warehouses
    rows = list(stream_sql(CONN_ID, ALL_ATTRIBUTES, fetch_size=7))  # many fetchmany rounds
    expected = [dict(zip(USER_ATTRIBUTES_COLUMNS, row, strict=True)) for row in _sqlite_rows(lite)]
    assert rows == expected
    assert [[type(value) for value in row.values()] for row in rows] == [
        [type(value) for value in row.values()] for row in expected
    ]
    # parameters in the hook's placeholder style
    some = list(
        stream_sql(CONN_ID, "SELECT user_id FROM user_attributes WHERE user_id <= ? ORDER BY user_id", ["u000003"])
    )
    assert some == [{"user_id": "u000001"}, {"user_id": "u000002"}, {"user_id": "u000003"}]
    assert list(stream_sql(CONN_ID, "SELECT * FROM user_attributes WHERE user_id = 'nobody'")) == []


def test_the_demo_segments_run_on_duckdb(
    duck_conn: Path, warehouses: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example DAGs' helpers: the view's name for a duckdb connection, the chunk queries, a segment's ids."""
    _, lite = warehouses
    monkeypatch.setenv("AIRFLOW_CONN_USERATTRS_DUCKDB_DX", json.dumps({"conn_type": "dx", "password": "t0ken"}))
    assert attributes_table(CONN_ID) == "user_attributes"
    assert attributes_table(CONN_ID, "analytics.attrs") == "analytics.attrs"

    def emails(rows: Iterable[Any]) -> list[str]:  # NULL emails (dirty rows) sort first
        return sorted(row or "" for row in rows)

    chunks = plan_chunks(CONN_ID, "userattrs_duckdb_dx", chunk_size=70, where="order_count > 0")
    assert len(chunks) > 1
    from_chunks = [
        row["email"] for chunk in chunks for row in stream_sql(CONN_ID, chunk["sql"], chunk.get("parameters"))
    ]
    expected = _sqlite_rows(lite, "SELECT email FROM user_attributes WHERE order_count > 0")
    assert emails(from_chunks) == emails(row[0] for row in expected)  # each user once, none lost

    ids = stream_sql(CONN_ID, segment_ids_sql(CONN_ID, "userattrs_duckdb_dx", "vip_level = 'gold'"))
    gold = _sqlite_rows(lite, "SELECT email FROM user_attributes WHERE vip_level = 'gold'")
    assert gold
    assert emails(row["email"] for row in ids) == emails(row[0] for row in gold)


def test_a_write_on_a_second_connection_while_a_stream_is_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ``get_conn()`` connections to one file coexist in one process (DuckDB shares the open database
    between them): one streams a SELECT with fetchmany while the other inserts into another table and commits.
    The stream reads every row of its snapshot; the write is visible to new queries at once."""
    path = tmp_path / "concurrent.duckdb"
    build_warehouse(str(path), users=USERS, seed=1)
    monkeypatch.setenv("AIRFLOW_CONN_USERATTRS_DUCKDB_RW", json.dumps({"conn_type": "duckdb", "host": str(path)}))
    hook = sql_hook("userattrs_duckdb_rw")
    setup = hook.get_conn()
    setup.execute("CREATE TABLE sync_log (user_id VARCHAR, seen INTEGER)")
    setup.close()

    stream = stream_sql("userattrs_duckdb_rw", "SELECT user_id FROM user_attributes ORDER BY user_id", fetch_size=25)
    writer = hook.get_conn()
    read: list[str] = []
    try:
        for position, row in enumerate(stream):
            read.append(row["user_id"])
            if position % 50 == 0:  # mid-stream: the reader's cursor is open between fetchmany calls
                writer.cursor().execute("INSERT INTO sync_log VALUES (?, ?)", [row["user_id"], position])
                writer.commit()
        count = writer.execute("SELECT COUNT(*) FROM sync_log").fetchone()
    finally:
        writer.close()
    assert read == [f"u{index:06d}" for index in range(1, USERS + 1)]
    assert count == (USERS // 50,)
    assert hook.get_first("SELECT COUNT(*), MAX(seen) FROM sync_log") == (USERS // 50, 250)
