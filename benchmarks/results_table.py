"""Results table (``results_table``) per warehouse engine: what writing its rows adds to a sync, in the same run.

    python -m benchmarks.results_table [--users 1000000] [--all-users 100000] [--repeat 2]
        [--engines sqlite,postgres,duckdb,mariadb] [--out section.md]

A sync of ``--users`` users with 3 attributes each goes through the sync engine (``SyncEngine.run``, chunks of
2,000 users, failure parts and checkpoint as in a task) to a vendor stand-in that answers at once and rejects
one attribute of 1 user in 100: 10,000 failure rows for a million users. No HTTP is involved, so what the
table costs is not hidden behind a vendor's latency (a real sync of a million users takes hours at a vendor's
quota). Each step runs in a fresh interpreter (``--worker``), through the Airflow connection and provider hook
a task uses:

1. **baseline**: the sync without a results table;
2. **failures**: the same sync with ``results_table`` (``results_outcomes="failures"``, the default), then the
   same run again as its second try (**retry**): its task instance has rows, so every outcome is looked up;
3. **baseline** and **all outcomes** for ``--all-users`` users: ``results_outcomes="all"``, 3 rows per user.

Each step runs ``--repeat`` times (2), the fastest kept: on a shared machine the slower run waited for it.
Time is ``perf_counter`` around the sync (and, separately, inside the table's writes); peak memory is the
worker's ``VmHWM`` reset before the sync (``/proc/self/clear_refs``), minus its RSS at the start: Python
objects plus an embedded engine's memory (SQLite, DuckDB). A server's own memory is not in it. The rows in the
table are counted afterwards and must be exactly what was written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RESULT = "BENCH-RESULTS "
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "userattrs_bench_results"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
MARIADB_DATABASE = "userattrs_bench_results"
CONN_ID = "bench_results"
ATTRIBUTES = ("plan", "score", "ltv")
REJECTED_EVERY = 100
"""One user in a hundred has its ``plan`` rejected: 1 % of the users, one failure row each."""
CHUNK = 2000
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL", "duckdb": "DuckDB", "mariadb": "MariaDB"}


def _connection(engine: str, workdir: Path) -> tuple[dict[str, Any], str]:
    """A fresh place for the table; the Airflow connection (as JSON) and the table's name."""
    if engine == "sqlite":
        return {"conn_type": "sqlite", "host": str(workdir / "warehouse.db")}, "userattrs_sync_results"
    if engine == "duckdb":
        return {"conn_type": "duckdb", "host": str(workdir / "warehouse.duckdb")}, "userattrs_sync_results"
    if engine == "mariadb":
        import mysql.connector

        conn = mysql.connector.connect(**MARIADB, autocommit=True)
        cursor = conn.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS {MARIADB_DATABASE}")
        cursor.execute(f"CREATE DATABASE {MARIADB_DATABASE}")
        conn.close()
        connection = {
            "conn_type": "mysql",
            "host": MARIADB["host"],
            "port": MARIADB["port"],
            "login": MARIADB["user"],
            "schema": MARIADB_DATABASE,
            "extra": {"client": "mysql-connector-python"},
        }
        return connection, "userattrs_sync_results"
    import psycopg2

    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE; CREATE SCHEMA {PG_SCHEMA}")
    conn.close()
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
    return connection, f"{PG_SCHEMA}.userattrs_sync_results"


# -- the worker: one fresh interpreter per engine and step ----------------------------------------------


class InstantVendor:
    """A vendor client that answers at once: every attribute delivered, but ``plan`` of 1 user in 100."""

    vendor_name = "bench"

    def __init__(self) -> None:
        self.requests = 0

    def stats(self) -> Any:
        from airflow_provider_userattrs.client.sender import ClientStats

        return ClientStats(self.requests, 0, 0.0)

    def validate(self, update: Any) -> tuple[Any, list[Any]]:
        return update, []

    def update_users(self, updates: Iterable[Any]) -> Iterator[Any]:
        from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult

        for update in updates:
            self.requests += 1
            refused = int(str(update.user_id)[1:]) % REJECTED_EVERY == 0
            results = [
                AttributeResult(update.user_id, name, Outcome.REJECTED, value, "plan is not a known plan")
                if refused and name == "plan"
                else AttributeResult(update.user_id, name, Outcome.DELIVERED, value)
                for name, value in update.attributes.items()
            ]
            yield UserResult(update.user_id, results, ref=update.ref)


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker(step: str, users: int, workdir: str) -> dict[str, float]:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
    from airflow_provider_userattrs.sync.engine import SyncEngine
    from airflow_provider_userattrs.sync.results_table import ResultsTable, TaskTry
    from airflow_provider_userattrs.sync.sources import from_records, sql_hook
    from airflow_provider_userattrs.sync.storage import FailureFolder

    def records_of(count: int) -> Any:
        def records(point: Any) -> Iterator[Any]:
            rows = (
                {"user_id": f"u{i:08d}", "plan": f"p{i % 7}", "score": i % 101, "ltv": i * 1.5} for i in range(count)
            )
            return from_records(rows, "user_id", list(ATTRIBUTES), point.offset)

        return records

    table_name = os.environ["BENCH_RESULTS_TABLE"]
    outcomes = {"failures": "failures", "retry": "failures", "all": "all"}.get(step)
    table = None
    written = {"seconds": 0.0}
    if outcomes is not None:
        # "retry": the failures step's run again as its second try, its rows there: every outcome is looked up
        run_id, try_number = ("run-failures", 2) if step == "retry" else (f"run-{step}", 1)
        task = TaskTry("bench", run_id, "push", -1, try_number)
        table = ResultsTable(CONN_ID, table_name, task, outcomes=outcomes)
        write = table.write

        def timed(tally: Any) -> None:
            started = time.perf_counter()
            write(tally)
            written["seconds"] += time.perf_counter() - started

        table.write = timed  # type: ignore[method-assign]
    folder = FailureFolder(ObjectStoragePath(f"file://{workdir}/failures-{step}-{time.time_ns()}"))
    # A small sync first, without the table: what the first chunk imports and sets up is not timed.
    warm = FailureFolder(ObjectStoragePath(f"file://{workdir}/warm-{time.time_ns()}"))
    SyncEngine(InstantVendor(), warm, 1, chunk_size=CHUNK).run(MemoryCheckpoint(), records_of(3 * CHUNK))  # type: ignore[arg-type]
    with open("/proc/self/clear_refs", "w") as refs:  # resets VmHWM to the current RSS
        refs.write("5")
    start_rss = _rss_mb("VmRSS")
    started = time.perf_counter()
    if table is not None:
        table.open()
    opened = time.perf_counter() - started
    try:
        engine = SyncEngine(InstantVendor(), folder, 1, chunk_size=CHUNK, results=table)  # type: ignore[arg-type]
        outcome = engine.run(MemoryCheckpoint(), records_of(users))
    finally:
        if table is not None:
            table.close()
    seconds = time.perf_counter() - started
    peak = _rss_mb("VmHWM") - start_rss
    rows = 0
    if table is not None:
        conn = sql_hook(CONN_ID).get_conn()
        cursor = conn.cursor()
        where = f"run_id = '{task.run_id}' AND try_number = {task.try_number}"
        cursor.execute(f"SELECT COUNT(*) FROM {table_name} WHERE {where}")
        rows = int(cursor.fetchall()[0][0])
        conn.close()
        assert rows == table.rows_written, (rows, table.rows_written)
    return {
        "users": outcome.total,
        "failed": outcome.failed,
        "rows": rows,
        "seconds": seconds,
        "write_seconds": written["seconds"],
        "open_seconds": opened,
        "peak_mb": peak,
    }


def run(engines: list[str], users: int, all_users: int, repeat: int = 2) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="userattrs-bench-results-"))
    results = []
    for engine in engines:
        connection, table = _connection(engine, workdir)
        env = {**os.environ, f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection), "BENCH_RESULTS_TABLE": table}
        env.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))

        def step(name: str, size: int, env: dict[str, str] = env) -> dict[str, float]:
            """The fastest of ``repeat`` runs (the machine may be shared: the slower ones waited for it)."""
            runs = []
            for _ in range(repeat):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.results_table", "--worker", name, "--users", str(size)],
                    env={**env, "BENCH_WORKDIR": str(workdir)},
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                line = next(line for line in out.splitlines() if line.startswith(RESULT))
                runs.append(dict(json.loads(line[len(RESULT) :])))
            return min(runs, key=lambda run: run["seconds"])

        row: dict[str, Any] = {"engine": engine}
        row["baseline"] = step("baseline", users)
        row["failures"] = step("failures", users)
        row["retry"] = step("retry", users)
        row["baseline_all"] = step("baseline", all_users)
        row["all"] = step("all", all_users)
        results.append(row)
        print(f"{LABELS[engine]}: {json.dumps(row)}", file=sys.stderr)
    return results


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Each sync through the sync engine (chunks of 2,000 users, 3 attributes each) to a vendor stand-in that "
        "answers at once and rejects one attribute of 1 user in 100; each step in a fresh interpreter through the "
        "Airflow connection's provider hook. `added` = the step's time minus the baseline's (the same sync without "
        "the table, same engine, same run); `in writes` = time inside the table's writes, `opening` = connecting, "
        "creating the table if needed and looking for an earlier try's rows (once per try).",
        "",
        "| engine | sync | rows written | seconds | added | in writes | opening | peak MB over start |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        label = LABELS[row["engine"]]
        for key, base, title in (
            ("baseline", None, "no table (baseline)"),
            ("failures", "baseline", '`results_outcomes="failures"`'),
            ("retry", "baseline", "the same run's second try: every outcome looked up"),
            ("baseline_all", None, "no table (baseline)"),
            ("all", "baseline_all", '`results_outcomes="all"`'),
        ):
            step = row[key]
            added = f"+{step['seconds'] - row[base]['seconds']:.1f} s" if base else ""
            in_writes = f"{step['write_seconds']:.1f} s" if base else ""
            opening = f"{step['open_seconds']:.1f} s" if base else ""
            lines.append(
                f"| {label} | {int(step['users']):,} users, {title} | {int(step['rows']):,} | {step['seconds']:.1f} | "
                f"{added} | {in_writes} | {opening} | {step['peak_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--all-users", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgres,duckdb,mariadb")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each step, the fastest kept")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(worker(args.worker, args.users, os.environ["BENCH_WORKDIR"])))
        return 0
    text = render(run(args.engines.split(","), args.users, args.all_users, args.repeat))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
