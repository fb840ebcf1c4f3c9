"""Scale benchmark of the UI's sync history: 10,000 sync task instances, the list endpoint timed.

Creates a fresh PostgreSQL database on 127.0.0.1:5432, migrates Airflow's metadata schema into it, inserts
``--runs`` x ``--chunks`` sync task instances of two DAGs with their ``report`` XComs (Airflow's own tables,
nothing added), then times ``GET /userattrs/api/syncs`` through Airflow's API app (auth manager, session,
routing: what the API server does) for several pages and filters, prints a table, and drops the database.

    .venv/bin/python benchmarks/ui_history.py            # 10,000 task instances (2 DAGs x 500 runs x 10 chunks)

``seed_history`` is also what tests/ui uses to fill its metadata DB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

VENDORS = (
    ("dx", "dx_default"),
    ("altatech", "altatech_default"),
    ("fyno", "fyno_default"),
    ("usercom", "usercom_default"),
)


@dataclass(frozen=True)
class SeededRun:
    dag_id: str
    run_id: str
    vendor: str


def sample_report(vendor: str, conn_id: str, index: int, failure_file: str | None = None) -> dict[str, Any]:
    """A report shaped like the operator's, with a few rejections in every third chunk."""
    total = 1000
    failed = 3 if index % 3 == 0 else 0
    return {
        "vendor": vendor,
        "conn_id": conn_id,
        "total": total,
        "succeeded": total - failed,
        "failed": failed,
        "retryable_users": 0,
        "failures": [
            {
                "user_id": f"u{index}-{i}",
                "attribute": "vip_level",
                "reason": "rejected: unknown user",
                "retryable": False,
            }
            for i in range(failed)
        ],
        "failures_truncated": False,
        "failure_file": failure_file,
        "requests_sent": total,
        "resumed": {"offset": 0, "replayed_users": 0},
        "try_number": 1,
        "dry_run": False,
        "duration_seconds": 1.5 + index % 7,
        "users_per_second": 600.0,
    }


def ensure_dags(session: Any, dag_ids: Iterable[str], bundle: str = "dags-folder") -> None:
    """Bundle and DAG rows, so that the auth manager's ``get_authorized_dag_ids`` knows the DAGs."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel

    if session.get(DagBundleModel, bundle) is None:
        session.add(DagBundleModel(name=bundle))
        session.flush()
    for dag_id in dag_ids:
        if session.get(DagModel, dag_id) is None:
            session.add(DagModel(dag_id=dag_id, bundle_name=bundle, is_paused=True))
    session.flush()


def seed_history(
    session: Any,
    dag_ids: Iterable[str],
    runs: int,
    chunks: int,
    *,
    task_id: str = "push_chunk",
    start: datetime | None = None,
    report_for: Any = None,
    state: str = "success",
) -> list[SeededRun]:
    """Insert ``runs`` DAG runs per DAG with ``chunks`` mapped sync task instances each, and their reports.

    Core inserts (one statement per table and DAG) keep 10,000 rows to seconds; the ORM would take minutes.
    ``report_for(vendor, conn_id, index)`` may replace :func:`sample_report`.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import insert, select

    dag_ids = list(dag_ids)
    ensure_dags(session, dag_ids)
    start = start or datetime.now(UTC) - timedelta(days=runs)
    make_report = report_for or (lambda vendor, conn_id, index: sample_report(vendor, conn_id, index))
    seeded: list[SeededRun] = []
    for dag_id in dag_ids:
        run_rows = _run_rows(dag_id, runs, start, state)
        session.execute(insert(DagRun.__table__), run_rows)
        ids = dict(
            session.execute(
                select(DagRun.run_id, DagRun.id).where(DagRun.run_id.in_([row["run_id"] for row in run_rows]))
            ).all()
        )
        ti_rows: list[dict[str, Any]] = []
        xcom_rows: list[dict[str, Any]] = []
        for r, run in enumerate(run_rows):
            vendor, conn_id = VENDORS[r % len(VENDORS)]
            seeded.append(SeededRun(dag_id, run["run_id"], vendor))
            for c in range(chunks):
                when = run["start_date"] + timedelta(seconds=c)
                ti_rows.append(_task_instance_row(run, task_id, c, state, when))
                report = make_report(vendor, conn_id, r * chunks + c)
                xcom_rows.append(_report_row(run, ids[run["run_id"]], task_id, c, report, when))
        session.execute(insert(TaskInstance.__table__), ti_rows)
        session.execute(insert(XComModel.__table__), xcom_rows)
    session.commit()
    return seeded


def _run_rows(dag_id: str, runs: int, start: datetime, state: str) -> list[dict[str, Any]]:
    """``runs`` scheduled DAG runs an hour apart from ``start``, their run ids tagged to stay unique."""
    tag = uuid.uuid4().hex[:6]
    rows: list[dict[str, Any]] = []
    for r in range(runs):
        when = start + timedelta(hours=r)
        rows.append(
            {
                "dag_id": dag_id,
                "run_id": f"scheduled__{when.isoformat()}_{tag}",
                "run_type": "scheduled",
                "state": state if state in ("success", "failed") else "running",
                "logical_date": None,
                "run_after": when,
                "start_date": when,
                "end_date": when + timedelta(minutes=5),
                "conf": {},
            }
        )
    return rows


def _task_instance_id() -> Any:
    """A new task instance id as the column takes it: a ``UUID`` from Airflow 3.2 (``Uuid``), its text on 3.0
    and 3.1 (``String(36)``, native ``UUID`` on PostgreSQL with ``as_uuid=False``)."""
    from airflow.models.taskinstance import TaskInstance

    value = uuid.uuid4()
    return value if getattr(TaskInstance.__table__.c.id.type, "as_uuid", False) else str(value)


def _task_instance_row(run: dict[str, Any], task_id: str, map_index: int, state: str, when: datetime) -> dict[str, Any]:
    return {
        "id": _task_instance_id(),
        "dag_id": run["dag_id"],
        "run_id": run["run_id"],
        "task_id": task_id,
        "map_index": map_index,
        "state": state,
        "pool": "default_pool",
        "try_number": 1,
        "start_date": when,
        "end_date": when + timedelta(seconds=30),
    }


def _report_row(
    run: dict[str, Any], dag_run_id: int, task_id: str, map_index: int, report: Any, when: datetime
) -> dict[str, Any]:
    return {
        "dag_run_id": dag_run_id,
        "dag_id": run["dag_id"],
        "run_id": run["run_id"],
        "task_id": task_id,
        "map_index": map_index,
        "key": "report",
        "value": report,
        "timestamp": when + timedelta(seconds=30),
    }


# ------------------------------------------------------------------------------------------------ the benchmark


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _time(client: Any, url: str, headers: dict[str, str], repeat: int) -> tuple[float, float, int]:
    timings, total = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url, headers=headers)
        timings.append(time.perf_counter() - began)
        response.raise_for_status()
        total = response.json()["total_entries"]
    return statistics.median(timings) * 1000, max(timings) * 1000, total


def run_benchmark(dsn: str, runs: int, chunks: int, repeat: int) -> list[tuple[str, float, float, int]]:
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    began = time.perf_counter()
    with create_session() as session:
        seed_history(session, ["userattrs_warehouse_sync", "userattrs_mass_update"], runs, chunks)
    print(f"seeded {2 * runs * chunks:,} sync task instances in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    with create_session() as session:
        session.execute(__import__("sqlalchemy").text("ANALYZE"))
    client = TestClient(create_app("core"))
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    headers = {"Authorization": f"Bearer {token}"}
    base = "/userattrs/api/syncs"
    cases = [
        ("first page (50)", f"{base}?limit=50"),
        ("page 100 (offset 4,950)", f"{base}?limit=50&offset=4950"),
        ("last page (offset 9,950)", f"{base}?limit=50&offset={2 * runs * chunks - 50}"),
        ("limit 100", f"{base}?limit=100"),
        ("dag_id filter", f"{base}?dag_id=userattrs_warehouse_sync&limit=50"),
        ("vendor filter (dx)", f"{base}?vendor=dx&limit=50"),
        ("state filter (success)", f"{base}?state=success&limit=50"),
        ("dag_id + vendor + offset", f"{base}?dag_id=userattrs_mass_update&vendor=fyno&limit=50&offset=200"),
        ("syncs page (HTML, chart of 500)", "/userattrs/syncs"),
    ]
    client.get(base, headers=headers)  # warm-up: imports, caches
    results = []
    for name, url in cases:
        if url.startswith(base):
            median, worst, total = _time(client, url, headers, repeat)
        else:
            t = []
            for _ in range(repeat):
                s = time.perf_counter()
                client.get(url, headers=headers).raise_for_status()
                t.append(time.perf_counter() - s)
            median, worst, total = statistics.median(t) * 1000, max(t) * 1000, -1
        results.append((name, median, worst, total))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="runs per DAG (two DAGs)")
    parser.add_argument("--chunks", type=int, default=10, help="mapped sync task instances per run")
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per case (median and worst shown)")
    args = parser.parse_args(argv)
    if os.environ.get("_USERATTRS_BENCH_CHILD") != "1":
        db = f"userattrs_ui_bench_{uuid.uuid4().hex[:8]}"
        _admin(f'CREATE DATABASE "{db}"')
        home = tempfile.mkdtemp(prefix="userattrs-ui-bench-")
        passwords = os.path.join(home, "passwords.json")
        with open(passwords, "w") as handle:  # a file of our own: SimpleAuthManager prints no generated password
            handle.write(json.dumps({"admin": uuid.uuid4().hex}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=home,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            # Provider-declared plugins load when providers are discovered eagerly (see the README, "The UI").
            AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS="False",
            AIRFLOW__API_AUTH__JWT_SECRET="userattrs-ui-bench",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=passwords,
            _USERATTRS_BENCH_CHILD="1",
        )
        try:
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
            return subprocess.run([sys.executable, __file__, *(argv or sys.argv[1:])], env=env).returncode
        finally:
            _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            print(f"dropped {db}", file=sys.stderr)
    results = run_benchmark("", args.runs, args.chunks, args.repeat)
    print(f"\nGET /userattrs/api/syncs over {2 * args.runs * args.chunks:,} sync task instances (PostgreSQL)\n")
    print("| case | median ms | worst ms | total_entries |\n|---|---:|---:|---:|")
    for name, median, worst, total in results:
        print(f"| {name} | {median:.1f} | {worst:.1f} | {'' if total < 0 else f'{total:,}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
