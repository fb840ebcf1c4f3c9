"""The results table in a real Airflow run: ``dag.test()`` against the vendor sandbox, a SQLite warehouse."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.operators.test_incremental import make_segment

pytestmark = pytest.mark.integration

SYNC = """
UpdateUserAttributesOperator(
    task_id="push", conn_id="dx_default", user_id_field="email", sql_conn_id="wh",
    sql="SELECT email, tier, ltv FROM segment", checkpoint_every=50, max_failure_ratio=0.1,
    results_table="userattrs_sync_results", dry_run="{{ dag_run.conf.get('dry_run', False) }}",
)
UpdateUserAttributesOperator.partial(
    task_id="push_records", conn_id="fyno_default", user_id_field="distinct_id", results_conn_id="wh",
    results_table="userattrs_sync_results", results_outcomes="all",
).expand(records=[[{"distinct_id": "r1", "plan": "pro"}], [{"distinct_id": "r2", "plan": "free"}]])
"""


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    path = tmp_path / "wh.db"
    make_segment(path, users=120)
    monkeypatch.setenv("AIRFLOW_CONN_WH", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT dag_id, run_id, task_id, map_index, try_number, user_id, attribute, outcome, reason, retryable "
            "FROM userattrs_sync_results ORDER BY task_id, map_index, user_id, attribute"
        ).fetchall()


def test_a_sync_writes_its_failures_and_a_mapped_records_sync_every_outcome(dag_harness, sandbox, warehouse):
    sandbox.register_unknown_users("dx", ["i0007@example.com"])
    result = dag_harness.run("results_a", SYNC)
    assert result.state == "success" and result.xcom("push")["failed"] == 1
    written = rows(warehouse)
    failures = [r for r in written if r[2] == "push"]
    assert len(failures) == 2  # the unknown user's two attributes; the 119 delivered users have no row
    for dag_id, run_id, _, map_index, try_number, user, _, outcome, reason, retryable in failures:
        assert (dag_id, run_id, map_index, try_number, user) == ("results_a", result.run_id, -1, 1, "i0007@example.com")
        assert outcome == "rejected" and reason and retryable == 0
    assert {r[1:3] for r in failures} == {(result.run_id, "push")}
    assert [(r[3], r[5], r[6], r[7]) for r in written if r[2] == "push_records"] == [
        (0, "r1", "plan", "delivered"),
        (1, "r2", "plan", "delivered"),
    ]

    dry = dag_harness.run("results_a", SYNC, conf={"dry_run": True})
    assert dry.state == "success"
    assert [r for r in rows(warehouse) if r[1] == dry.run_id and r[2] == "push"] == []  # a dry run writes nothing
