"""Incremental against full sync on a warehouse segment: requests sent and wall time, in one run.

    python -m benchmarks.incremental --users 1000000 --changed 0.01 [--out section.md]

A segment table is materialised from the demo warehouse (SQLite), synced once with ``incremental=True``
(which fills the state table), then 1 % of its users get a new ``vip_level``. Measured on the same sandbox:
the incremental run after that change, an incremental run with no change at all, and a full sync of the same
segment (what every run costs without the option). Fyno is the vendor: its batch endpoint keeps the full
sync of a million users within minutes, so the comparison fits in one benchmark run.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEGMENT_SQL = "SELECT fyno_distinct_id, lifetime_value, vip_level, churn_risk FROM segment"


class _TaskInstance:
    """What the operator reads of a task instance when run outside a DAG run."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number = dag_id, run_id, "push", -1, 1
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _sync(incremental: bool, run_id: str) -> tuple[float, dict[str, Any]]:
    from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

    operator = UpdateUserAttributesOperator(
        task_id="push",
        conn_id="bench_inc_fyno",
        sql_conn_id="bench_inc_wh",
        sql=SEGMENT_SQL,
        user_id_field="fyno_distinct_id",
        incremental=incremental,
        state_key="bench.incremental",
        checkpoint_every=20_000,
        max_failure_ratio=1.0,
    )
    started = time.perf_counter()
    report = operator.execute({"ti": _TaskInstance("bench_incremental", run_id)})
    return time.perf_counter() - started, report


def run(users: int, changed_share: float) -> list[dict[str, Any]]:
    from airflow_provider_userattrs.demo.warehouse import build_warehouse
    from airflow_provider_userattrs.sandbox import SandboxClient

    workdir = Path(tempfile.mkdtemp(prefix="userattrs-bench-inc-"))
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))
    os.environ["USERATTRS_FAILURE_PATH"] = f"file://{workdir / 'failures'}"
    db = workdir / "warehouse.db"
    build_warehouse(str(db), users=users, dirty=False)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE segment AS SELECT * FROM user_attributes")
        conn.execute("CREATE INDEX segment_id ON segment (fyno_distinct_id)")
    port_file = workdir / "sandbox.port"
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_userattrs.sandbox", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        client = SandboxClient(url)
        client.wait_until_up()
        os.environ["AIRFLOW_CONN_BENCH_INC_WH"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
        os.environ["AIRFLOW_CONN_BENCH_INC_FYNO"] = json.dumps(
            {"conn_type": "fyno", "host": url, "password": "sandbox-token", "extra": {"workspace_id": "sandboxwsid"}}
        )
        rows = []

        def measure(label: str, incremental: bool, run_id: str) -> None:
            before = client.stats()["requests"]["total"]
            seconds, report = _sync(incremental, run_id)
            sent = client.stats()["requests"]["total"] - before
            rows.append({"case": label, "users_sent": report["total"], "requests": sent, "seconds": seconds})

        measure("first incremental run (fills the state)", True, "r1")
        step = max(1, round(1 / changed_share))
        with sqlite3.connect(db) as conn:
            conn.execute(f"UPDATE segment SET vip_level = 'changed' WHERE rowid % {step} = 0")
        measure(f"incremental, {changed_share:.0%} of users changed", True, "r2")
        measure("incremental, nothing changed", True, "r3")
        measure("full sync (incremental=False)", False, "r4")
        return rows
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def render(rows: list[dict[str, Any]], users: int) -> str:
    full = next(r for r in rows if r["case"].startswith("full"))
    lines = [
        f"Segment of {users:,} users (Fyno, batches of 100), SQLite warehouse, state table in the warehouse.",
        "",
        "| case | users sent | HTTP requests | wall s | x faster than full sync |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        speedup = full["seconds"] / row["seconds"] if row["seconds"] else 0.0
        lines.append(
            f"| {row['case']} | {row['users_sent']:,} | {row['requests']:,} | {row['seconds']:.1f} | {speedup:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = render(run(args.users, args.changed), args.users)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
