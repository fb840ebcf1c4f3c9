"""Scenario 3: warehouse rows streamed through ``stream_sql`` + ``from_records`` to the DX hook: memory stays flat.

Every case runs in a fresh interpreter (``python -m benchmarks.run --worker SPEC``, which calls
:func:`worker_stream`), one per size, so that each one's memory is its own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.environment import progress, quiet_logging
from benchmarks.measure import Span, peak_rss_mb
from benchmarks.processes import run_child, run_worker
from benchmarks.report import Report, Section, Target, f_int, f_mb, f_pct, f_rate, f_sec, table
from benchmarks.sandbox import Sandbox
from benchmarks.settings import CONCURRENCY, CONN_IDS, Sizes

SQLITE_CONN_ID = "bench_wh"
PG_CONN_ID = "bench_pg"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_CONN_URI = "postgres://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "userattrs_bench"
HEADERS = [
    *("database", "rows", "mode", "wall s", "rows/s", "users ok / failed / problems", "requests / API min"),
    *("client CPU", "sandbox CPU", "RSS after imports MB", "peak RSS MB", "Δ MB", "build s"),
]


# -- cases ---------------------------------------------------------------------------------------------------


def case_build(target: str, users: int, schema: str) -> dict[str, Any]:
    """Build the demo warehouse (forked child)."""
    from airflow_provider_userattrs.demo.warehouse import build_warehouse

    start = time.perf_counter()
    summary = build_warehouse(target, users=users, schema=schema)
    return {"seconds": time.perf_counter() - start, "orders": summary["orders"]}


def worker_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Stream ``spec["sql"]`` through ``stream_sql`` + ``from_records`` and send it or only validate it."""
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook  # noqa: F401 - counted in the import RSS

    import airflow_provider_userattrs.operators  # noqa: F401 - as a DAG file does: counted in the import RSS
    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.sync.sources import from_records, stream_sql

    if spec["db"] == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

    quiet_logging()
    hook = get_hook(CONN_IDS[spec["vendor"]])
    hook.get_conn()
    rss_ready = peak_rss_mb()
    rows = problems = ok = failed = 0

    def updates() -> Iterator[Any]:
        nonlocal rows, problems
        for item in from_records(stream_sql(spec["conn_id"], spec["sql"]), "email", None):
            rows += 1
            if item.update is None:
                problems += 1
                continue
            yield item.update

    with Span(spec.get("sandbox_pid")) as span:
        if spec["mode"] == "send":
            for result in hook.update_users(updates()):
                if result.ok:
                    ok += 1
                else:
                    failed += 1
        else:
            for update in updates():
                sendable, issues = hook.validate(update)
                if sendable is None or any(issue.outcome.is_failure for issue in issues):
                    failed += 1
                else:
                    ok += 1
    hook.close()
    return span.as_dict() | {
        "rows": rows,
        "problems": problems,
        "ok": ok,
        "failed": failed,
        "requests_sent": hook.requests_sent,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- PostgreSQL ----------------------------------------------------------------------------------------------


def postgres_problem() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3).close()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def drop_bench_schema() -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.commit()
    finally:
        conn.close()


# -- the scenario ------------------------------------------------------------------------------------------


def scenario_streaming(sandbox: Sandbox, sizes: Sizes, report: Report, workdir: Path) -> Section:
    section = Section(
        "3. Warehouse-sourced streaming (`stream_sql` + `from_records` → DX hook)",
        "`SELECT email, lifetime_value, vip_level FROM user_attributes ORDER BY user_id` on the demo warehouse "
        "(2 % dirty rows: NULL emails are counted as problems, `.invalid` emails are refused by DX), read with "
        "`stream_sql` (10,000 rows a fetch; a server-side cursor on PostgreSQL) and turned into `UserUpdate`s by "
        "`from_records`. `send`: through `DXHook.update_users` to the sandbox at latency 0; `validate`: "
        "`hook.validate` only, no HTTP. Every case runs in a fresh interpreter: `RSS after imports` is its "
        "high-water mark (`VmHWM`) once Airflow, the provider and the SQL hooks are imported, `peak RSS` the same "
        "at the end (`ru_maxrss` would report the benchmark parent's peak instead: Linux carries it across "
        "fork + exec).",
    )
    pg_problem = postgres_problem()
    databases = [("sqlite", "SQLite")] + ([("postgres", "PostgreSQL")] if not pg_problem else [])
    if pg_problem:
        section.notes.append(f"PostgreSQL rows skipped: the server at 127.0.0.1:5432 is unreachable ({pg_problem}).")
    rows: list[list[str]] = []
    peaks: dict[tuple[str, str, int], float] = {}
    try:
        for db, label in databases:
            for count in sorted(set(sizes.stream_send) | set(sizes.stream_validate)):
                rows += _measure_size(sandbox, sizes, workdir, db, label, count, peaks)
    finally:
        if not pg_problem:
            try:
                drop_bench_schema()
            except Exception as exc:  # the report matters more than the clean-up
                section.notes.append(f"Dropping schema {PG_SCHEMA} failed: {type(exc).__name__}: {exc}")
    section.tables.append(("", table(HEADERS, rows)))
    section.notes += _notes(sizes)
    report.targets.append(_target(sizes, databases, peaks))
    report.extras["s3_peaks"] = peaks
    section.bounds = (
        "Memory stays flat because nothing holds the rows: `stream_sql` fetches 10,000 at a time (a named, "
        "server-side cursor on PostgreSQL; SQLite's cursor steps through the query), `from_records` is a generator, "
        f"and the hook keeps at most 2 x concurrency ({2 * CONCURRENCY}) calls in flight. Time: `validate` is "
        "the reading and per-row CPU work (the DX email check runs for each id, since every email differs), on "
        "one core; `send` adds one HTTP call per user and runs at scenario 1's latency-0 rate."
    )
    return section


def _source(db: str, count: int, workdir: Path) -> tuple[str, str, dict[str, str], str]:
    """Where the warehouse of ``count`` users is built, its query, the worker's environment and connection id."""
    if db == "sqlite":
        target = str(workdir / f"warehouse-{count}.db")
        sql = "SELECT email, lifetime_value, vip_level FROM user_attributes ORDER BY user_id"
        env = dict(os.environ, AIRFLOW_CONN_BENCH_WH=json.dumps({"conn_type": "sqlite", "host": target}))
        return target, sql, env, SQLITE_CONN_ID
    sql = f"SELECT email, lifetime_value, vip_level FROM {PG_SCHEMA}.user_attributes ORDER BY user_id"
    return PG_URL, sql, dict(os.environ, AIRFLOW_CONN_BENCH_PG=PG_CONN_URI), PG_CONN_ID


def _measure_size(
    sandbox: Sandbox,
    sizes: Sizes,
    workdir: Path,
    db: str,
    label: str,
    count: int,
    peaks: dict[tuple[str, str, int], float],
) -> list[list[str]]:
    """Build one warehouse, then stream it in each mode measured at this size: the rows; ``peaks`` filled in."""
    target, sql, env, conn_id = _source(db, count, workdir)
    progress(f"3. build {label} warehouse, {count:,} users")
    build = run_child(case_build, target, count, PG_SCHEMA)
    if "error" in build:
        return [[label, f_int(count), "build", "error", build["error"][:80]]]
    rows: list[list[str]] = []
    modes = [m for m, s in (("send", sizes.stream_send), ("validate", sizes.stream_validate)) if count in s]
    for mode in modes:
        progress(f"3. {label} {mode}, {count:,} rows")
        sandbox.prepare()
        spec = {"db": db, "mode": mode, "vendor": "dx", "conn_id": conn_id, "sql": sql, "sandbox_pid": sandbox.pid}
        result = run_worker(spec, env)
        if "error" in result:
            rows.append([label, f_int(count), mode, "error", result["error"][:80]])
            continue
        sent = sandbox.requests().get("total", 0) if mode == "send" else 0
        peaks[(db, mode, count)] = result["peak_rss_mb"]
        rows.append(_row(label, count, mode, result, sent, build))
    return rows


def _row(label: str, count: int, mode: str, result: dict[str, Any], sent: int, build: dict[str, Any]) -> list[str]:
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    return [
        label,
        f_int(count),
        mode,
        f_sec(result["seconds"]),
        f_rate(rate),
        f"{f_int(result['ok'])} / {f_int(result['failed'])} / {f_int(result['problems'])}",
        f"{f_int(sent)} / {f_int(result['ok'] + result['failed'])}" if mode == "send" else "no HTTP",
        f_pct(result["client_cpu"], result["seconds"]),
        f_pct(result["sandbox_cpu"], result["seconds"]) if mode == "send" else "—",
        f_mb(result["rss_ready_mb"]),
        f_mb(result["peak_rss_mb"]),
        f"{result['peak_rss_mb'] - result['rss_ready_mb']:,.0f}",
        f"{f_sec(build['seconds'])}",
    ]


def _notes(sizes: Sizes) -> list[str]:
    notes: list[str] = []
    largest_send = max(sizes.stream_send)
    if max(sizes.stream_validate) > largest_send:
        notes.append(
            f"Sizes above {f_int(largest_send)} rows are measured in `validate` mode only: sending 1,000,000 users to "
            "DX one request each at the rate of scenario 1 would take about 8 minutes per database, beyond this "
            "run's time budget. The `validate` path reads, converts and validates every row exactly as `send` "
            "does before the HTTP layer."
        )
    notes.append(
        "`failed`: in `send`, the users DX refuses (emails at `.invalid`, 1 in 300 rows), which `validate` alone "
        "cannot know; `problems`: rows with a NULL email, which never become updates. `requests / API min`: "
        "requests the sandbox counted / updates that reached the hook (one call each is the minimum)."
    )
    return notes


def _target(sizes: Sizes, databases: list[tuple[str, str]], peaks: dict[tuple[str, str, int], float]) -> Target:
    """Peak RSS growth from the smallest to the largest size, per database and mode: ≤ 50 MB."""
    targets_text = []
    met = True
    small, large = min(sizes.stream_validate), max(sizes.stream_validate)
    send_sizes = sorted(sizes.stream_send)
    for db, label in databases:
        low, high = peaks.get((db, "validate", small)), peaks.get((db, "validate", large))
        if low is not None and high is not None:
            targets_text.append(f"{label} validate {f_int(small)}→{f_int(large)}: {high - low:+.0f} MB")
            met = met and high - low <= 50
        if len(send_sizes) > 1:
            low, high = peaks.get((db, "send", send_sizes[0])), peaks.get((db, "send", send_sizes[-1]))
            if low is not None and high is not None:
                targets_text.append(
                    f"{label} send {f_int(send_sizes[0])}→{f_int(send_sizes[-1])}: {high - low:+.0f} MB"
                )
                met = met and high - low <= 50
    return Target(
        f"Streaming: peak RSS grows ≤ 50 MB from {f_int(small)} to {f_int(large)} rows",
        "; ".join(targets_text) or "not measured",
        met if targets_text else None,
    )
