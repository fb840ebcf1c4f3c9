"""The demo warehouse: deterministic, counted, dirty where asked, and the same view on SQLite, DuckDB and
PostgreSQL."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_userattrs.demo.warehouse import (
    CHURN_RISKS,
    DIRTY_BLOCK,
    DIRTY_KINDS,
    PRODUCTS,
    UNKNOWN_USERCOM_ID_BASE,
    USER_ATTRIBUTES_COLUMNS,
    VIP_LEVELS,
    WarehouseError,
    build_warehouse,
    duckdb_path,
    is_duckdb_target,
    is_postgres_target,
    main,
    redact_target,
    sqlite_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_ATTRIBUTES = "SELECT * FROM user_attributes ORDER BY user_id"
PRODUCT_NAMES = {name for name, _, _ in PRODUCTS}


def _query(path: Path | str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _scalar(path: Path | str, sql: str) -> Any:
    return _query(path, sql)[0][0]


def _expected_attributes(
    users: Sequence[tuple[Any, ...]], orders: Sequence[tuple[Any, ...]]
) -> dict[str, tuple[Any, ...]]:
    """``user_attributes`` recomputed in Python from the base tables, independently of the view's SQL.

    ``users`` rows: user_id, email, usercom_id, fyno_distinct_id, full_name, country, churn_score,
    last_seen_override; ``orders`` rows: user_id, product, amount, ordered_at (str or datetime).
    """
    by_user: dict[str, list[tuple[str, Decimal, str]]] = {}
    for user_id, product, amount, ordered_at in orders:
        by_user.setdefault(user_id, []).append((product, Decimal(str(amount)), str(ordered_at)[:10]))
    expected = {}
    for user_id, email, usercom_id, fyno_id, full_name, country, churn_score, override in users:
        mine = by_user.get(user_id, [])
        value = sum((amount for _, amount, _ in mine), Decimal(0)).quantize(Decimal("0.01"))
        vip = next((level for limit, level in VIP_LEVELS if value >= limit), "none")
        churn = next((risk for limit, risk in CHURN_RISKS if churn_score >= limit), "low")
        expected[user_id] = (
            user_id,
            email,
            usercom_id,
            fyno_id,
            float(value),
            len(mine),
            override if override is not None else max((day for _, _, day in mine), default=None),
            vip,
            ",".join(sorted({product for product, _, _ in mine})) or None,
            churn,
            country,
            full_name,
        )
    return expected


_USERS_FOR_CHECK = (
    "SELECT user_id, email, usercom_id, fyno_distinct_id, full_name, country, churn_score, last_seen_override "
    "FROM users"
)
_ORDERS_FOR_CHECK = "SELECT user_id, product, amount, ordered_at FROM orders"


@pytest.fixture(scope="module")
def dirty_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One 1,200-user dirty warehouse shared by the read-only tests (every dirty kind appears from 300 users)."""
    path = tmp_path_factory.mktemp("warehouse") / "dirty.db"
    return path, build_warehouse(str(path), users=1200, seed=7)


# --- determinism ----------------------------------------------------------------------------------------------


def test_same_seed_and_size_give_identical_data(tmp_path: Path) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    assert build_warehouse(str(first), users=700, seed=11) == {
        **build_warehouse(str(second), users=700, seed=11),
        "target": str(first),
    }
    for sql in (ALL_ATTRIBUTES, "SELECT * FROM users ORDER BY user_id", "SELECT * FROM orders ORDER BY order_id"):
        assert _query(first, sql) == _query(second, sql)


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    build_warehouse(str(tmp_path / "a.db"), users=200, seed=1)
    build_warehouse(str(tmp_path / "b.db"), users=200, seed=2)
    assert _query(tmp_path / "a.db", ALL_ATTRIBUTES) != _query(tmp_path / "b.db", ALL_ATTRIBUTES)


def test_chunk_size_does_not_change_the_data(tmp_path: Path) -> None:
    build_warehouse(str(tmp_path / "a.db"), users=450, chunk_size=7)
    build_warehouse(str(tmp_path / "b.db"), users=450)
    for sql in (ALL_ATTRIBUTES, "SELECT * FROM orders ORDER BY order_id"):
        assert _query(tmp_path / "a.db", sql) == _query(tmp_path / "b.db", sql)


def test_seed_7_is_pinned(dirty_db: tuple[Path, dict[str, Any]]) -> None:
    """Hand-checked rows: a change to the generator shows up here, not as a silently different demo."""
    path, _ = dirty_db
    assert _query(path, "SELECT * FROM user_attributes WHERE user_id <= 'u000003' ORDER BY user_id") == [
        ("u000001", "marco.rossi1@example.com", 1, "fd-000001", 77.5, 1, "2026-09-04", "none",
         "Bluetooth Speaker", "low", "ES", "Marco Rossi"),
        ("u000002", "quentin.ivanova2@example.com", 2, "fd-000002", 2562.34, 10, "2026-10-16", "gold",
         "Charging Pad,Coffee Grinder,E-Reader,Ergonomic Chair,Noise-Cancelling Headphones,Phone Case,"
         "Portable SSD 1TB,Smart Watch,Standing Desk,Travel Backpack", "medium", "US", "Quentin Ivanova"),
        ("u000003", "lukasz.muller3@example.com", 3, "fd-000003", 652.61, 5, "2026-10-05", "silver",
         "Coffee Grinder,Desk Lamp,E-Reader,Gift Card,Monitor 27in", "low", "IT", "Łukasz Müller"),
    ]  # fmt: skip
    # u000002 by hand from its orders: ten orders whose amounts add up to the lifetime value, gold (>= 1500).
    orders = _query(path, "SELECT amount, ordered_at FROM orders WHERE user_id = 'u000002' ORDER BY order_id")
    assert len(orders) == 10
    assert sum(Decimal(str(amount)) for amount, _ in orders) == Decimal("2562.34")
    assert orders[-1][1].startswith("2026-10-16")  # order ids follow time, so the last one is the latest


# --- shape and counts -----------------------------------------------------------------------------------------


def test_counts_and_formats(dirty_db: tuple[Path, dict[str, Any]]) -> None:
    path, summary = dirty_db
    assert summary["users"] == 1200 == _scalar(path, "SELECT COUNT(*) FROM users")
    assert summary["orders"] == _scalar(path, "SELECT COUNT(*) FROM orders") > 1200
    assert _scalar(path, "SELECT COUNT(*) FROM user_attributes") == 1200
    assert summary["target"] == str(path)
    # order ids run 1..n without gaps, each user has 0..15 orders, some have none and some are whales
    assert _query(path, "SELECT MIN(order_id), MAX(order_id) FROM orders") == [(1, summary["orders"])]
    per_user = dict(_query(path, "SELECT user_id, order_count FROM user_attributes"))
    assert min(per_user.values()) == 0
    assert max(per_user.values()) == 15
    assert sum(per_user.values()) == summary["orders"]
    assert {row[0] for row in _query(path, "SELECT DISTINCT product FROM orders")} <= PRODUCT_NAMES
    assert _scalar(path, "SELECT COUNT(*) FROM orders WHERE ordered_at >= '2026-11-01'") == 0
    before_signup = (
        "SELECT COUNT(*) FROM orders AS o JOIN users AS u USING (user_id) WHERE o.ordered_at < u.signup_date"
    )
    assert _scalar(path, before_signup) == 0

    rows = _query(path, "SELECT user_id, email, usercom_id, fyno_distinct_id FROM users ORDER BY user_id")
    for index, (user_id, email, usercom_id, fyno_id) in enumerate(rows, start=1):
        assert user_id == f"u{index:06d}"
        assert len(user_id) <= 32
        assert fyno_id == f"fd-{index:06d}"
        assert usercom_id in (index, UNKNOWN_USERCOM_ID_BASE + index)
        assert email is None or re.fullmatch(rf"[a-z]+\.[a-z]+{index}@example\.(com|invalid)", email)
    assert [column[0] for column in sqlite3.connect(path).execute(ALL_ATTRIBUTES).description] == list(
        USER_ATTRIBUTES_COLUMNS
    )


def test_view_matches_values_recomputed_in_python(dirty_db: tuple[Path, dict[str, Any]]) -> None:
    path, _ = dirty_db
    expected = _expected_attributes(_query(path, _USERS_FOR_CHECK), _query(path, _ORDERS_FOR_CHECK))
    actual = {row[0]: row for row in _query(path, ALL_ATTRIBUTES)}
    assert actual == expected
    # every level and risk actually occurs, so the thresholds are exercised
    assert {row[7] for row in actual.values()} == {"none", "silver", "gold", "platinum"}
    assert {row[9] for row in actual.values()} == {"low", "medium", "high"}
    no_orders = [row for row in actual.values() if row[5] == 0]
    assert no_orders
    assert all(row[4] == 0.0 and row[8] is None for row in no_orders)


def test_empty_warehouse(tmp_path: Path) -> None:
    summary = build_warehouse(str(tmp_path / "empty.db"), users=0)
    assert summary == {"users": 0, "orders": 0, "dirty": dict.fromkeys(DIRTY_KINDS, 0), "target": summary["target"]}
    assert _query(tmp_path / "empty.db", ALL_ATTRIBUTES) == []


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users"):
        build_warehouse(str(tmp_path / "x.db"), users=-1)
    with pytest.raises(ValueError, match="schema"):  # refused before any connection is attempted
        build_warehouse("postgresql://nobody@127.0.0.1:1/none", users=1, schema='x"; DROP SCHEMA public; --')
    with pytest.raises(ValueError, match="SQLite"):
        build_warehouse("mysql://root@localhost/db", users=1)


# --- dirty rows -----------------------------------------------------------------------------------------------


def _dirty_counts_in_db(path: Path | str) -> dict[str, int]:
    return {
        "null_country": _scalar(path, "SELECT COUNT(*) FROM users WHERE country IS NULL"),
        "null_email": _scalar(path, "SELECT COUNT(*) FROM users WHERE email IS NULL"),
        "long_full_name": _scalar(path, "SELECT COUNT(*) FROM users WHERE length(full_name) > 255"),
        "bad_date": _scalar(path, "SELECT COUNT(*) FROM users WHERE last_seen_override IS NOT NULL"),
        "unknown_dx_email": _scalar(path, "SELECT COUNT(*) FROM users WHERE email LIKE '%@example.invalid'"),
        "unknown_usercom_id": _scalar(
            path, f"SELECT COUNT(*) FROM users WHERE usercom_id >= {UNKNOWN_USERCOM_ID_BASE}"
        ),
    }


def test_dirty_kinds_are_present_and_counted(dirty_db: tuple[Path, dict[str, Any]]) -> None:
    path, summary = dirty_db
    assert set(summary["dirty"]) == set(DIRTY_KINDS)
    assert summary["dirty"] == _dirty_counts_in_db(path)
    assert all(count >= 3 for count in summary["dirty"].values())
    assert sum(summary["dirty"].values()) == 1200 // DIRTY_BLOCK  # 2 %

    long_names = [row[0] for row in _query(path, "SELECT full_name FROM users WHERE length(full_name) > 255")]
    assert all(300 <= len(name) <= 400 for name in long_names)
    bad_dates = _query(
        path,
        "SELECT u.last_seen_override, a.last_purchase_date FROM users AS u"
        " JOIN user_attributes AS a USING (user_id) WHERE u.last_seen_override IS NOT NULL",
    )
    for override, shown in bad_dates:
        assert shown == override  # the view returns the broken value instead of the real date
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", override)
        with pytest.raises(ValueError):
            date.fromisoformat(override)


def test_each_dirty_user_has_one_defect_only(dirty_db: tuple[Path, dict[str, Any]]) -> None:
    path, summary = dirty_db
    defects = _query(
        path,
        "SELECT user_id FROM users WHERE country IS NULL OR email IS NULL OR length(full_name) > 255"
        " OR last_seen_override IS NOT NULL OR email LIKE '%.invalid' OR usercom_id >= ?",
        (UNKNOWN_USERCOM_ID_BASE,),
    )
    assert len(defects) == sum(summary["dirty"].values())


def test_clean_build_is_the_dirty_one_without_defects(tmp_path: Path, dirty_db: tuple[Path, dict[str, Any]]) -> None:
    dirty_path, dirty_summary = dirty_db
    clean_path = tmp_path / "clean.db"
    summary = build_warehouse(str(clean_path), users=1200, seed=7, dirty=False)
    assert summary["dirty"] == dict.fromkeys(DIRTY_KINDS, 0) == _dirty_counts_in_db(clean_path)
    assert summary["orders"] == dirty_summary["orders"]
    orders = "SELECT * FROM orders ORDER BY order_id"
    assert _query(clean_path, orders) == _query(dirty_path, orders)
    clean_users = _query(clean_path, "SELECT * FROM users ORDER BY user_id")
    dirty_users = _query(dirty_path, "SELECT * FROM users ORDER BY user_id")
    assert sum(a != b for a, b in zip(clean_users, dirty_users, strict=True)) == sum(dirty_summary["dirty"].values())


# --- targets and rebuilds -------------------------------------------------------------------------------------


def test_rebuild_replaces_the_demo_objects_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "rebuild.db"
    build_warehouse(str(path), users=300, seed=3)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE keep_me (x INTEGER)")
    conn.execute("INSERT INTO keep_me VALUES (42)")
    conn.commit()
    conn.close()

    summary = build_warehouse(str(path), users=120, seed=4)
    assert _scalar(path, "SELECT COUNT(*) FROM user_attributes") == 120
    assert _scalar(path, "SELECT COUNT(*) FROM orders") == summary["orders"]
    assert _query(path, "SELECT x FROM keep_me") == [(42,)]

    # an older layout where user_attributes was a table is replaced too
    conn = sqlite3.connect(path)
    conn.execute("DROP VIEW user_attributes")
    conn.execute("CREATE TABLE user_attributes (user_id TEXT)")
    conn.commit()
    conn.close()
    build_warehouse(str(path), users=50, seed=4)
    assert _query(path, "SELECT type FROM sqlite_master WHERE name = 'user_attributes'") == [("view",)]
    assert _scalar(path, "SELECT COUNT(*) FROM user_attributes") == 50


def test_sqlite_url_and_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "demo.db"
    summary = build_warehouse(f"sqlite:///{path}", users=60)
    assert summary["target"] == f"sqlite:///{path}"
    assert _scalar(path, "SELECT COUNT(*) FROM users") == 60


def test_target_helpers() -> None:
    assert sqlite_path("/tmp/demo.db") == "/tmp/demo.db"
    assert sqlite_path("sqlite:////tmp/demo.db") == "/tmp/demo.db"
    assert sqlite_path("sqlite:///demo.db") == "demo.db"
    for bad in ("sqlite://", "sqlite:///", "http://example.com/x.db", ""):
        with pytest.raises(ValueError):
            sqlite_path(bad)
    assert is_postgres_target("postgresql://u@h:5432/db")
    assert is_postgres_target("postgres://u@h/db")
    assert is_postgres_target("postgresql+psycopg2://u@h/db")
    assert not is_postgres_target("/tmp/postgresql.db")
    assert not is_postgres_target("sqlite:///x.db")
    assert redact_target("postgresql://u:s3cret@h:5432/db?sslmode=require&password=s3cret") == (
        "postgresql://u@h:5432/db?sslmode=require"
    )
    assert redact_target("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_target("/tmp/demo.db") == "/tmp/demo.db"


def test_sqlite_keyset_page_does_not_scan_the_whole_view(tmp_path: Path) -> None:
    """A sync reading pages by ``user_id > ? ORDER BY user_id LIMIT n`` must not pay a full scan per page."""
    path = tmp_path / "plan.db"
    build_warehouse(str(path), users=100)
    plan = " | ".join(
        row[3]
        for row in _query(
            path, "EXPLAIN QUERY PLAN SELECT * FROM user_attributes WHERE user_id > ? ORDER BY user_id LIMIT 10", ("u",)
        )
    )
    assert "TEMP B-TREE FOR ORDER BY" not in plan
    assert "SCAN u" not in plan  # the users' key is searched, not scanned


# --- command line ---------------------------------------------------------------------------------------------


def test_main_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.db"
    assert main(["--target", str(path), "--users", "80", "--seed", "5", "--clean"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == build_warehouse(str(tmp_path / "api.db"), users=80, seed=5, dirty=False) | {"target": str(path)}


def test_main_reports_a_failed_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", "mysql://root@localhost/db", "--users", "1"]) == 1
    assert "not a SQLite target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--target", "x.db", "--users", "-5"])


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    path = tmp_path / "script.db"
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_userattrs.demo.warehouse", "--target", str(path), "--users", "60"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(result.stdout)["users"] == 60
    assert _scalar(path, "SELECT COUNT(*) FROM users") == 60


# --- scale ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_200k_users_build_across_many_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    summary = build_warehouse(str(path), users=200_000)
    assert summary["users"] == 200_000 == _scalar(path, "SELECT COUNT(*) FROM users")
    assert summary["orders"] == _scalar(path, "SELECT COUNT(*) FROM orders")
    assert sum(summary["dirty"].values()) == 200_000 // DIRTY_BLOCK


# --- PostgreSQL -----------------------------------------------------------------------------------------------


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name nobody else uses, dropped afterwards."""
    import psycopg2
    from psycopg2 import sql

    schema = f"userattrs_test_{secrets.token_hex(6)}"
    yield schema
    conn = psycopg2.connect(postgres_dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()


def _pg_query(dsn: str, schema: str, query: str) -> list[tuple[Any, ...]]:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.postgres
def test_postgres_matches_sqlite_row_for_row(postgres_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    summary = build_warehouse(postgres_dsn, users=1200, seed=7, schema=pg_schema)
    sqlite_summary = build_warehouse(str(tmp_path / "same.db"), users=1200, seed=7)
    assert summary == sqlite_summary | {"target": postgres_dsn}

    rows = _pg_query(postgres_dsn, pg_schema, ALL_ATTRIBUTES)
    assert rows == _query(tmp_path / "same.db", ALL_ATTRIBUTES)  # same values, same Python types
    expected = _expected_attributes(
        _pg_query(postgres_dsn, pg_schema, _USERS_FOR_CHECK), _pg_query(postgres_dsn, pg_schema, _ORDERS_FOR_CHECK)
    )
    assert {row[0]: row for row in rows} == expected
    assert _pg_query(postgres_dsn, pg_schema, "SELECT COUNT(*) FROM orders") == [(summary["orders"],)]


@pytest.mark.postgres
def test_postgres_rebuild_and_determinism(postgres_dsn: str, pg_schema: str) -> None:
    build_warehouse(postgres_dsn, users=400, seed=9, schema=pg_schema)
    first = _pg_query(postgres_dsn, pg_schema, ALL_ATTRIBUTES)
    build_warehouse(postgres_dsn, users=150, seed=1, dirty=False, schema=pg_schema)
    assert _pg_query(postgres_dsn, pg_schema, "SELECT COUNT(*) FROM user_attributes") == [(150,)]
    summary = build_warehouse(postgres_dsn, users=400, seed=9, schema=pg_schema)
    assert _pg_query(postgres_dsn, pg_schema, ALL_ATTRIBUTES) == first
    # 8 blocks of 50 users, kinds in turn: the first two kinds twice, the others once
    assert summary["dirty"] == {
        "null_country": 2,
        "null_email": 2,
        "long_full_name": 1,
        "bad_date": 1,
        "unknown_dx_email": 1,
        "unknown_usercom_id": 1,
    }


@pytest.mark.postgres
def test_postgres_tables_are_typed_and_keyed(postgres_dsn: str, pg_schema: str) -> None:
    build_warehouse(postgres_dsn, users=100, schema=pg_schema)
    columns = dict(
        _pg_query(
            postgres_dsn,
            pg_schema,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            f" WHERE table_schema = '{pg_schema}' AND table_name IN ('users', 'orders')",
        )
    )
    assert columns["orders.amount"] == "numeric"
    assert columns["orders.ordered_at"] == "timestamp without time zone"
    assert columns["users.signup_date"] == "date"
    keys = _pg_query(
        postgres_dsn,
        pg_schema,
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'p'"
        f" AND connamespace = '{pg_schema}'::regnamespace ORDER BY 1",
    )
    assert keys == [("orders",), ("users",)]


# --- DuckDB (embedded: always runs) ---------------------------------------------------------------------------


def _duck_query(path: Path | str, sql: str) -> list[tuple[Any, ...]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _duck_scalar(path: Path | str, sql: str) -> Any:
    return _duck_query(path, sql)[0][0]


def _typed(rows: Sequence[tuple[Any, ...]]) -> list[tuple[tuple[Any, type], ...]]:
    """Rows with each value's Python type beside it: ``1 == 1.0``, but a sync would send them differently."""
    return [tuple((value, type(value)) for value in row) for row in rows]


def test_duckdb_matches_sqlite_row_for_row(tmp_path: Path) -> None:
    duck, lite = tmp_path / "same.duckdb", tmp_path / "same.db"
    summary = build_warehouse(str(duck), users=400, seed=7)
    assert summary == build_warehouse(str(lite), users=400, seed=7) | {"target": str(duck)}
    assert sum(summary["dirty"].values()) == 8  # dirty rows of every kind take part in the comparison

    unordered = "SELECT * FROM user_attributes"
    by_user = {row[0]: row for row in _duck_query(duck, unordered)}
    rows = [by_user[key] for key in sorted(by_user)]
    expected = sorted(_query(lite, unordered), key=lambda row: row[0])
    assert len(rows) == 400
    assert _typed(rows) == _typed(expected)  # same values, same Python types
    assert _duck_query(duck, ALL_ATTRIBUTES) == rows  # DuckDB's ORDER BY user_id sorts as Python (and SQLite) do
    # and both equal the values recomputed in Python from DuckDB's own base tables
    assert {row[0]: row for row in rows} == _expected_attributes(
        _duck_query(duck, _USERS_FOR_CHECK), _duck_query(duck, _ORDERS_FOR_CHECK)
    )
    conn = duckdb.connect(str(duck), read_only=True)
    try:
        assert [column[0] for column in conn.execute(ALL_ATTRIBUTES).description] == list(USER_ATTRIBUTES_COLUMNS)
    finally:
        conn.close()


def test_duckdb_base_tables_hold_the_same_rows(tmp_path: Path) -> None:
    duck, lite = tmp_path / "base.duckdb", tmp_path / "base.db"
    build_warehouse(str(duck), users=250, seed=3)
    build_warehouse(str(lite), users=250, seed=3)
    users = "SELECT * FROM users ORDER BY user_id"
    assert [(*row[:6], str(row[6]), *row[7:]) for row in _duck_query(duck, users)] == _query(lite, users)
    orders = "SELECT order_id, user_id, product, CAST(amount AS VARCHAR), ordered_at FROM orders ORDER BY order_id"
    lite_orders = _query(lite, "SELECT order_id, user_id, product, amount, ordered_at FROM orders ORDER BY order_id")
    assert [(*row[:4], str(row[4])) for row in _duck_query(duck, orders)] == [
        (*row[:3], f"{Decimal(str(row[3])):.2f}", row[4]) for row in lite_orders
    ]


def test_duckdb_tables_are_typed_and_keyed(tmp_path: Path) -> None:
    path = tmp_path / "typed.duckdb"
    build_warehouse(str(path), users=100)
    columns = dict(
        _duck_query(
            path,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_name IN ('users', 'orders')",
        )
    )
    assert columns["orders.amount"] == "DECIMAL(12,2)"
    assert columns["orders.ordered_at"] == "TIMESTAMP"
    assert columns["users.signup_date"] == "DATE"
    assert columns["users.churn_score"] == "DOUBLE"
    keys = _duck_query(
        path, "SELECT table_name FROM information_schema.table_constraints WHERE constraint_type = 'PRIMARY KEY'"
    )
    assert keys == [("users",)]


def test_duckdb_empty_and_clean_builds(tmp_path: Path) -> None:
    summary = build_warehouse(str(tmp_path / "empty.duckdb"), users=0)
    assert summary["orders"] == 0
    assert _duck_query(tmp_path / "empty.duckdb", ALL_ATTRIBUTES) == []
    clean = build_warehouse(str(tmp_path / "clean.duckdb"), users=300, seed=2, dirty=False)
    assert clean["dirty"] == dict.fromkeys(DIRTY_KINDS, 0)
    build_warehouse(str(tmp_path / "clean.db"), users=300, seed=2, dirty=False)
    assert _duck_query(tmp_path / "clean.duckdb", ALL_ATTRIBUTES) == _query(tmp_path / "clean.db", ALL_ATTRIBUTES)


def test_duckdb_rebuild_replaces_the_demo_objects_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "rebuild.duckdb"
    build_warehouse(str(path), users=300, seed=3)
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE keep_me (x INTEGER)")
    conn.execute("INSERT INTO keep_me VALUES (42)")
    conn.close()

    summary = build_warehouse(str(path), users=120, seed=4)
    assert _duck_scalar(path, "SELECT COUNT(*) FROM user_attributes") == 120
    assert _duck_scalar(path, "SELECT COUNT(*) FROM orders") == summary["orders"]
    assert _duck_query(path, "SELECT x FROM keep_me") == [(42,)]

    # an older layout where user_attributes was a table is replaced too
    conn = duckdb.connect(str(path))
    conn.execute("DROP VIEW user_attributes")
    conn.execute("CREATE TABLE user_attributes (user_id TEXT)")
    conn.close()
    build_warehouse(str(path), users=50, seed=4)
    assert _duck_query(
        path, "SELECT table_type FROM information_schema.tables WHERE table_name = 'user_attributes'"
    ) == [("VIEW",)]
    assert _duck_scalar(path, "SELECT COUNT(*) FROM user_attributes") == 50


def test_duckdb_url_and_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "demo.duckdb"
    summary = build_warehouse(f"duckdb:///{path}", users=60)  # duckdb:////abs/path, as the DuckDB hook's URI
    assert summary["target"] == f"duckdb:///{path}"
    assert _duck_scalar(path, "SELECT COUNT(*) FROM users") == 60
    other = tmp_path / "any-name.db.bak"
    build_warehouse(f"duckdb:///{other}", users=5)  # a URL needs no .duckdb suffix
    assert _duck_scalar(other, "SELECT COUNT(*) FROM user_attributes") == 5


def test_duckdb_target_helpers() -> None:
    assert is_duckdb_target("/tmp/demo.duckdb")
    assert is_duckdb_target("demo.DuckDB")
    assert is_duckdb_target("duckdb:////tmp/demo.duckdb")
    assert is_duckdb_target("DUCKDB:///rel/demo.anything")
    assert not is_duckdb_target("/tmp/demo.db")
    assert not is_duckdb_target("sqlite:///x.duckdb")
    assert not is_duckdb_target("postgresql://u@h/db")
    assert duckdb_path("/tmp/demo.duckdb") == "/tmp/demo.duckdb"
    assert duckdb_path("duckdb:////tmp/demo.duckdb") == "/tmp/demo.duckdb"
    assert duckdb_path("duckdb:///demo.duckdb") == "demo.duckdb"
    for bad in ("duckdb://", "duckdb:///", "sqlite:///x.duckdb", ""):
        with pytest.raises(ValueError):
            duckdb_path(bad)


def test_duckdb_file_held_by_another_process_is_a_warehouse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB lets one process at a time open a file: the build names the file instead of crashing."""
    path = tmp_path / "held.duckdb"
    build_warehouse(str(path), users=10)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseError, match="DuckDB database") as caught:
            build_warehouse(str(path), users=20)
        assert isinstance(caught.value.__cause__, duckdb.Error)
        assert main(["--target", str(path), "--users", "20"]) == 1
        assert "lock" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert _duck_scalar(path, "SELECT COUNT(*) FROM users") == 10  # untouched
    build_warehouse(str(path), users=20)
    assert _duck_scalar(path, "SELECT COUNT(*) FROM users") == 20


def test_duckdb_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.duckdb"
    assert main(["--target", str(path), "--users", "80", "--seed", "5", "--clean"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == build_warehouse(str(tmp_path / "api.db"), users=80, seed=5, dirty=False) | {"target": str(path)}
    assert _duck_query(path, ALL_ATTRIBUTES) == _query(tmp_path / "api.db", ALL_ATTRIBUTES)

    url = f"duckdb:///{tmp_path / 'script.duckdb'}"
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_userattrs.demo.warehouse", "--target", url, "--users", "60"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(result.stdout)["target"] == url
    assert _duck_scalar(tmp_path / "script.duckdb", "SELECT COUNT(*) FROM user_attributes") == 60


def test_duckdb_loads_in_several_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows go to DuckDB one temporary CSV file at a time: the batches add up to the same warehouse."""
    import airflow_provider_userattrs.demo.warehouse as warehouse

    monkeypatch.setattr(warehouse, "DUCKDB_FLUSH_USERS", 40)
    build_warehouse(str(tmp_path / "batched.duckdb"), users=450, chunk_size=7)
    build_warehouse(str(tmp_path / "batched.db"), users=450)
    assert _duck_query(tmp_path / "batched.duckdb", ALL_ATTRIBUTES) == _query(tmp_path / "batched.db", ALL_ATTRIBUTES)


@pytest.mark.slow
def test_duckdb_200k_users_build_across_many_copy_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.duckdb"
    summary = build_warehouse(str(path), users=200_000)
    assert summary["users"] == 200_000 == _duck_scalar(path, "SELECT COUNT(*) FROM user_attributes")
    assert summary["orders"] == _duck_scalar(path, "SELECT SUM(order_count) FROM user_attributes")
