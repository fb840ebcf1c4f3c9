"""Incremental diff per warehouse engine at 1M rows: time and peak memory, against a plain read in the same run.

    python -m benchmarks.warehouses --users 1000000 [--engines sqlite,postgres,duckdb,mariadb] [--out section.md]

For each engine a ``segment`` table of ``--users`` rows (user id, 3 attributes) is created in the engine
itself, in a shuffled physical order. Then, in a fresh interpreter per engine (``--worker``), through the
same Airflow connection and provider hook a sync uses:

1. **plain read**: the segment streamed as a full sync reads it (``keyed_rows``: in user-id order, the resume
   rule's query). The baseline every other row is a ratio of;
2. **first run**: the diff against an empty state (every user changed), and the state write of every value
   (``WarehouseState.record``, the engine's upsert), chunk by chunk as the engine writes it;
3. **nothing changed**: the diff against a full state: 0 rows come back;
4. **1 % changed**: one user in a hundred gets a new value, the diff returns those.

No vendor is involved: what is measured is the warehouse side. Time is ``perf_counter`` around each step;
peak memory is the worker's ``VmHWM`` reset before each step (``/proc/self/clear_refs``), so each step's peak
is its own, minus the RSS at its start: Python objects plus an embedded engine's memory (SQLite, DuckDB). A
PostgreSQL server's own memory is not in it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT = "BENCH-WAREHOUSE "
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "userattrs_bench_wh"
CONN_ID = "bench_warehouse"
ATTRIBUTES = ["plan", "score", "ltv"]
CHUNK = 20_000
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL", "duckdb": "DuckDB", "mariadb": "MariaDB"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
MARIADB_DATABASE = "userattrs_bench_wh"

# Rows in a shuffled physical order: ids permuted by a multiplier prime to the size.
_ROW = "'u' || {id} AS user_id, 'plan-' || CAST(g % 7 AS {text}) AS plan, g % 101 AS score, (g % 1000) * 1.5 AS ltv"


def _select(engine: str, users: int) -> str:
    if engine == "sqlite":
        return _ROW.format(id=f"printf('%08d', (g * 7919) % {users})", text="TEXT")
    if engine == "mariadb":
        return (
            f"CONCAT('u', LPAD((g * 7919) % {users}, 8, '0')) AS user_id, CONCAT('plan-', g % 7) AS plan, "
            "g % 101 AS score, (g % 1000) * 1.5 AS ltv"
        )
    text = "VARCHAR" if engine == "duckdb" else "TEXT"
    return _ROW.format(id=f"lpad(CAST((CAST(g AS BIGINT) * 7919) % {users} AS {text}), 8, '0')", text=text)


def _build(engine: str, users: int, workdir: Path) -> tuple[dict[str, Any], str]:
    """Create the segment; the Airflow connection (as JSON) the worker reads it through, and the table's name."""
    select = _select(engine, users)
    if engine == "sqlite":
        import sqlite3

        path = workdir / "warehouse.db"
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE IF EXISTS segment")
            conn.execute(
                f"CREATE TABLE segment AS WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s "
                f"WHERE g < {users}) SELECT {select} FROM s"
            )
        return {"conn_type": "sqlite", "host": str(path)}, "segment"
    if engine == "duckdb":
        import duckdb

        path = workdir / "warehouse.duckdb"
        with duckdb.connect(str(path)) as conn:
            conn.execute(f"CREATE OR REPLACE TABLE segment AS SELECT {select} FROM range(1, {users + 1}) t(g)")
        return {"conn_type": "duckdb", "host": str(path)}, "segment"
    if engine == "mariadb":
        import mysql.connector

        conn = mysql.connector.connect(**MARIADB, autocommit=True)
        cursor = conn.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS {MARIADB_DATABASE}")  # its state table too
        cursor.execute(f"CREATE DATABASE {MARIADB_DATABASE}")
        cursor.execute(  # MariaDB's Sequence engine: seq_1_to_N is a table of 1..N
            f"CREATE TABLE {MARIADB_DATABASE}.segment AS SELECT {select} FROM (SELECT seq AS g FROM "
            f"{MARIADB_DATABASE}.seq_1_to_{users}) s"
        )
        conn.close()
        connection = {
            "conn_type": "mysql",
            "host": MARIADB["host"],
            "port": MARIADB["port"],
            "login": MARIADB["user"],
            "schema": MARIADB_DATABASE,
            "extra": {"client": "mysql-connector-python"},
        }
        return connection, f"{MARIADB_DATABASE}.segment"
    import psycopg2

    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE; CREATE SCHEMA {PG_SCHEMA}")  # its state table too
        cur.execute(f"CREATE TABLE {PG_SCHEMA}.segment AS SELECT {select} FROM generate_series(1, {users}) g")
        cur.execute(f"ANALYZE {PG_SCHEMA}.segment")
    conn.close()
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
    return connection, f"{PG_SCHEMA}.segment"


def _change(engine: str, connection: dict[str, Any], table: str, share: float) -> None:
    step = round(1 / share)
    update = f"UPDATE {table} SET plan = 'changed' WHERE CAST(substr(user_id, 2) AS INTEGER) % {step} = 0"
    if engine == "sqlite":
        import sqlite3

        with sqlite3.connect(connection["host"]) as conn:
            conn.execute(update)
    elif engine == "duckdb":
        import duckdb

        with duckdb.connect(connection["host"]) as conn:
            conn.execute(update)
    elif engine == "mariadb":
        import mysql.connector

        mysql_conn = mysql.connector.connect(**MARIADB, autocommit=True)
        mysql_conn.cursor().execute(update.replace("AS INTEGER", "AS UNSIGNED"))
        mysql_conn.close()
    else:
        import psycopg2

        conn = psycopg2.connect(PG_DSN)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(update)
        conn.close()


# -- the worker: one fresh interpreter per engine and phase ---------------------------------------------


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _measure(work: Callable[[], int]) -> dict[str, float]:
    with open("/proc/self/clear_refs", "w") as refs:  # resets VmHWM to the current RSS
        refs.write("5")
    start = _rss_mb("VmRSS")
    started = time.perf_counter()
    rows = work()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "peak_mb": _rss_mb("VmHWM") - start}


def worker(phase: str) -> dict[str, float]:
    from airflow_provider_userattrs.sync.incremental import Segment, WarehouseState
    from airflow_provider_userattrs.sync.keyset import ResumePoint
    from airflow_provider_userattrs.sync.sources import keyed_rows

    sql = f"SELECT user_id, {', '.join(ATTRIBUTES)} FROM {os.environ['BENCH_TABLE']}"
    segment = Segment("user_id", ATTRIBUTES, list, sql, None, fetch_size=10_000)

    def plain_read() -> int:
        _, rows = keyed_rows(CONN_ID, sql, None, "user_id", ResumePoint())
        return sum(1 for _ in rows)

    def diff(record: bool) -> Callable[[], int]:
        def run() -> int:
            count = 0
            with WarehouseState(CONN_ID, "bench", table=os.environ["BENCH_STATE_TABLE"]) as state:
                updates: list[tuple[str, str, str | None]] = []
                for item in state.changes(segment, full_refresh=False):
                    count += 1
                    if record and item.state is not None and item.state_user is not None:
                        updates.extend((item.state_user, name, text) for name, text in item.state.items())
                        if len(updates) >= CHUNK * len(ATTRIBUTES):
                            state.record(updates)
                            updates = []
                state.record(updates)
            return count

        return run

    work = {"plain": plain_read, "first": diff(True), "diff": diff(False), "write": diff(True)}[phase]
    return _measure(work)


def run(engines: list[str], users: int, share: float) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="userattrs-bench-wh-"))
    results = []
    for engine in engines:
        started = time.perf_counter()
        connection, table = _build(engine, users, workdir)
        build = time.perf_counter() - started
        env = {**os.environ, f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection), "BENCH_TABLE": table}
        env["BENCH_STATE_TABLE"] = table.replace("segment", "userattrs_sync_state")
        env.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))

        def phase(name: str, env: dict[str, str] = env) -> dict[str, float]:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.warehouses", "--worker", name],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            line = next(line for line in out.splitlines() if line.startswith(RESULT))
            return dict(json.loads(line[len(RESULT) :]))

        row: dict[str, Any] = {"engine": engine, "users": users, "build_seconds": round(build, 1)}
        row["plain"] = phase("plain")
        row["first"] = phase("first")
        row["unchanged"] = phase("diff")
        _change(engine, connection, table, share)
        row["changed"] = phase("write")
        results.append(row)
        print(f"{LABELS[engine]}: {json.dumps(row)}", file=sys.stderr)
    return results


def render(rows: list[dict[str, Any]], share: float) -> str:
    users = rows[0]["users"] if rows else 0
    lines = [
        f"Segment of {users:,} users (id + 3 attributes), shuffled physical order; state table in the same engine. "
        "Each step in a fresh interpreter through the Airflow connection's provider hook; `x plain` = the step's "
        "time over a plain read of the segment in id order (what a full sync reads), same engine, same run.",
        "",
        "| engine | step | rows out | seconds | x plain | peak MB over start |",
        "|---|---|---|---|---|---|",
    ]
    steps = [
        ("plain", "plain read in id order (baseline)"),
        ("first", "first run: diff + state write of every value"),
        ("unchanged", "diff, nothing changed"),
        ("changed", f"diff, {share:.0%} changed (+ their state write)"),
    ]
    for row in rows:
        base = row["plain"]["seconds"] or 1.0
        for key, label in steps:
            step = row[key]
            lines.append(
                f"| {LABELS[row['engine']]} | {label} | {int(step['rows']):,} | {step['seconds']:.1f} | "
                f"{step['seconds'] / base:.2f}x | {step['peak_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--engines", default="sqlite,postgres,duckdb,mariadb")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(worker(args.worker)))
        return 0
    text = render(run(args.engines.split(","), args.users, args.changed), args.changed)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
