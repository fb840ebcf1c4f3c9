"""A SQL sync killed with SIGKILL mid-way, the table's physical order changed, then retried (issue 15).

The query has no ``ORDER BY``, so PostgreSQL returns the rows in their physical order, and that order changes
between the tries (``CLUSTER`` on another index, then updates that move rows). A retry that skips the rows
an earlier try settled *by position* skips the wrong rows: some users are never delivered and others are
sent twice, while the report says every user succeeded. A retry that resumes *by key* (after the last
settled ``user_id_field``) delivers every user, each once but the chunk that was in flight at the kill.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_userattrs.operators import UpdateUserAttributesOperator
from tests.conftest import sandbox_connections

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

USERS, CHUNK, CONCURRENCY = 3000, 200, 8
PLANS = ("free", "starter", "pro", "team", "enterprise")


class _TaskInstance:
    """The little of a task instance the operator reads (the task runner provides the real one)."""

    def __init__(self, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "keyset_resume", "run-1", "push", -1
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _operator(table: str) -> UpdateUserAttributesOperator:
    return UpdateUserAttributesOperator(
        task_id="push",
        conn_id="dx_default",
        sql_conn_id="keyset_warehouse",
        sql=f"SELECT email, plan, score FROM {table}",  # no ORDER BY: the rows come in physical order
        user_id_field="email",
        checkpoint_every=CHUNK,
        hook_params={"concurrency": CONCURRENCY},
    )


def _run(table: str, try_number: int, result_path: str | None = None) -> None:
    # No task_state_store in this context: the checkpoint is a file beside the failure files, which
    # outlives the killed process as the store would.
    report = _operator(table).execute({"ti": _TaskInstance(try_number)})
    if result_path:
        with open(result_path, "w") as handle:
            json.dump(report, handle)


def _execute(dsn: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '20s'")  # the killed try's session must be gone first
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _physical_order(dsn: str, table: str) -> list[str]:
    """The emails as the operator's query (no ORDER BY) returns them now."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT email, plan, score FROM {table}")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def user_table(postgres_dsn: str) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """A table of USERS users in a schema of its own, inserted in a shuffled order, with an index on the id
    and one on the score; yields its qualified name and what DX must hold for each user."""
    import psycopg2
    from psycopg2.extras import execute_values

    schema = f"userattrs_keyset_{secrets.token_hex(4)}"
    table = f"{schema}.segment"
    rng = random.Random(15)
    rows = [(f"ks{i:05d}@example.com", rng.choice(PLANS), rng.randrange(1_000_000)) for i in range(USERS)]
    rng.shuffle(rows)
    conn = psycopg2.connect(postgres_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
            cur.execute(f"CREATE TABLE {table} (email text PRIMARY KEY, plan text NOT NULL, score integer NOT NULL)")
            execute_values(cur, f"INSERT INTO {table} (email, plan, score) VALUES %s", rows, page_size=500)
            cur.execute(f"CREATE INDEX segment_score_idx ON {table} (score)")
            cur.execute(f"ANALYZE {table}")
    finally:
        conn.close()
    expected = {email: {"plan": plan, "score": str(score)} for email, plan, score in rows}
    try:
        yield table, expected
    finally:
        _execute(postgres_dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _wait_until_quiet(sandbox: Any, seconds: float = 0.3) -> int:
    """The sandbox's request count once it stops moving (requests on the wire at the kill are finished)."""
    total = sandbox.stats()["requests"]["total"]
    while True:
        time.sleep(seconds)
        now = sandbox.stats()["requests"]["total"]
        if now == total:
            return total
        total = now


def test_sql_retry_after_physical_reorder_resumes_by_key_and_delivers_every_user_once(
    sandbox, postgres_dsn, user_table, tmp_path, monkeypatch, airflow_db
):
    table, expected = user_table
    dx_conn = json.loads(sandbox_connections(sandbox.url)["AIRFLOW_CONN_DX_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_DX_DEFAULT", json.dumps(dx_conn))
    warehouse = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
    monkeypatch.setenv("AIRFLOW_CONN_KEYSET_WAREHOUSE", json.dumps(warehouse))
    monkeypatch.setenv("USERATTRS_FAILURE_PATH", f"file://{tmp_path / 'failures'}")
    order_before = _physical_order(postgres_dsn, table)

    # Try 1: killed once a good part of the users is delivered.
    sandbox.set_faults(latency=0.004)
    child = multiprocessing.get_context("fork").Process(target=_run, args=(table, 1))
    child.start()
    deadline = time.monotonic() + 60
    while sandbox.stats()["requests"]["total"] < USERS // 2:
        assert child.is_alive(), f"try 1 ended (exit code {child.exitcode}) before it could be killed"
        assert time.monotonic() < deadline, sandbox.stats()["requests"]
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    requests_1 = _wait_until_quiet(sandbox)
    delivered_1 = sandbox.state("dx")
    assert 0 < len(delivered_1) < USERS, len(delivered_1)

    # Between the tries the table's physical order changes for real: rewritten in score order, then a
    # fifth of the rows moved to its end by updates that change no value.
    _execute(
        postgres_dsn,
        f"CLUSTER {table} USING segment_score_idx",
        f"UPDATE {table} SET plan = plan WHERE score % 5 = 0",
        f"ANALYZE {table}",
    )
    order_after = _physical_order(postgres_dsn, table)
    assert sorted(order_after) == sorted(order_before)
    assert order_after != order_before
    assert set(order_after[: USERS // 3]) != set(order_before[: USERS // 3])

    # Try 2, on a fresh sandbox so that its DX state holds exactly what try 2 sent.
    sandbox.reset()
    out = tmp_path / "report.json"
    _run(table, 2, str(out))
    report = json.loads(out.read_text())
    sent_2 = sandbox.state("dx")
    requests_2 = sandbox.stats()["requests"]["total"]

    final = {**delivered_1, **sent_2}
    skipped = sorted(set(expected) - set(final))
    sent_twice = set(delivered_1) & set(sent_2)
    numbers = (
        f"try 1 delivered {len(delivered_1)} users in {requests_1} requests; try 2 sent {len(sent_2)} users in "
        f"{requests_2} requests; {len(skipped)} users never delivered, {len(sent_twice)} sent twice; report of "
        f"try 2: total={report['total']} succeeded={report['succeeded']} failed={report['failed']} "
        f"resumed={report.get('resumed')}"
    )
    print(numbers)
    assert not skipped, f"users skipped by the retry: {numbers}"
    assert final == expected, numbers
    assert (report["total"], report["succeeded"], report["failed"]) == (USERS, USERS, 0), numbers
    # Each user went out once, but those of the chunk in flight at the kill.
    assert requests_2 == len(sent_2), numbers
    assert len(sent_twice) <= CHUNK, numbers
    assert requests_1 + requests_2 <= USERS + CHUNK + CONCURRENCY, numbers
