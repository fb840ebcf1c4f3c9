"""Both operators in a real Airflow (``dag.test()``, SQLite metadata) against the sandbox on a real port."""

from __future__ import annotations

import json
import sqlite3

import pytest

from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from airflow_provider_userattrs.sync.storage import read_lines
from tests.conftest import VENDOR_USERS

pytestmark = pytest.mark.integration

USER_ID_FIELD = {"altatech": "user_id", "fyno": "distinct_id", "dx": "email", "usercom": "id"}


def records_literal(vendor: str, count: int, start: int = 0) -> str:
    make = VENDOR_USERS[vendor]
    field = USER_ID_FIELD[vendor]
    rows = [{field: make(i), "plan": "pro" if i % 3 else "free", "score": i} for i in range(start, start + count)]
    return repr(rows)


def users_of(sandbox, vendor: str) -> dict:
    state = sandbox.state(vendor)
    return state["sandboxwsid/live"] if vendor == "fyno" else state


def key(vendor: str, user):
    return str(user) if vendor == "usercom" else user


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_records_reach_every_vendor_and_the_report_counts_users(dag_harness, sandbox, vendor):
    result = dag_harness.run(
        f"records_{vendor}",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="{vendor}_default", user_id_field="{USER_ID_FIELD[vendor]}",
            records={records_literal(vendor, 40)},
        )
        """,
    )
    assert result.state == "success"
    report = result.xcom("push")
    assert (report["vendor"], report["total"], report["succeeded"], report["failed"]) == (vendor, 40, 40, 0)
    assert report == result.xcom("push", key="report")
    users = users_of(sandbox, vendor)
    assert len(users) == 40
    assert users[key(vendor, VENDOR_USERS[vendor](4))]["plan"] == "pro"
    assert report["requests_sent"] == sandbox.stats()["requests"]["total"]


def test_xcomarg_source_bad_rows_reported_with_reasons_and_failure_file(dag_harness, sandbox):
    result = dag_harness.run(
        "xcom_source",
        """
        @task
        def segment():
            good = [{"email": f"p{i}@example.com", "tier": "gold"} for i in range(20)]
            bad = [
                {"email": "not-an-email", "tier": "gold"},
                {"email": None, "tier": "gold"},
                {"tier": "no id at all"},
                {"email": "q@example.com", "tier": {"nested": 1}, "ok_attr": "fine"},
                {"email": "ghost@example.invalid", "tier": "gold"},
            ]
            return good + bad

        UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", user_id_field="email", records=segment(),
            max_failure_ratio=0.3,
        )
        """,
    )
    assert result.state == "success"
    report = result.xcom("push")
    assert (report["total"], report["succeeded"], report["failed"]) == (25, 20, 5)
    reasons = {(f["user_id"], f["attribute"]): f["reason"] for f in report["failures"] if f["user_id"]}
    no_id = [f["reason"] for f in report["failures"] if f["user_id"] is None]
    assert "not an email" in reasons[("not-an-email", "tier")]
    assert any("is NULL" in r for r in no_id) and any("has no field 'email'" in r for r in no_id)
    assert "dict" in reasons[("q@example.com", "tier")]
    assert "user_not_found" in reasons[("ghost@example.invalid", "tier")]
    assert all(f["retryable"] is False for f in report["failures"])
    # the user's other attribute still went
    assert sandbox.state("dx")["q@example.com"] == {"ok_attr": "fine"}
    lines = list(read_lines(report["failure_file"]))
    assert len(lines) == 5 and {"user_id", "attribute", "value", "reason", "retryable"} <= set(lines[0])


def test_threshold_fails_the_task_and_still_pushes_the_report(dag_harness, sandbox):
    result = dag_harness.run(
        "threshold",
        """
        push = UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", user_id_field="email",
            records=[{"email": "a@example.com", "x": "1"}, {"email": "bad", "x": "1"}], max_failure_ratio=0.4,
        )

        @task(trigger_rule="all_done")
        def read_why(ti=None):
            report = ti.xcom_pull(task_ids="push", key="report")
            assert report["failed"] == 1, report
            return report["failures"][0]["reason"]

        push >> read_why()
        """,
    )
    assert result.task_state("push") == "failed"
    assert result.xcom("push") is None  # no return value for a failed task...
    assert result.xcom("push", key="report")["failed"] == 1  # ...but the report is there
    assert "not an email" in result.xcom("read_why")


def test_sqlite_warehouse_source_and_mass_update_from_sql(dag_harness, sandbox, tmp_path, monkeypatch):
    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (user_id TEXT, ltv REAL, last_purchase TEXT, churn TEXT)")
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?)",
            [(f"u{i:04d}", i * 1.5, f"2026-10-{(i % 28) + 1:02d}", "high" if i % 2 else "low") for i in range(300)],
        )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    result = dag_harness.run(
        "sqlite_source",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="altatech_default", sql_conn_id="warehouse",
            sql="SELECT user_id, ltv, last_purchase FROM users ORDER BY user_id",
            attributes={"ltv": "lifetime_value", "last_purchase": "last_purchase_date"}, checkpoint_every=64,
        )
        MassUpdateOperator(
            task_id="flag", conn_id="usercom_default", attribute="churn_risk", value="high",
            sql_conn_id="warehouse", sql="SELECT rowid FROM users WHERE churn = 'high' ORDER BY rowid",
        )
        """,
    )
    assert result.state == "success"
    assert result.xcom("push")["succeeded"] == 300
    assert sandbox.state("altatech")["u0007"] == {"lifetime_value": 10.5, "last_purchase_date": "2026-10-08"}
    flagged = result.xcom("flag")
    assert flagged["succeeded"] == 150
    assert sandbox.stats()["requests"]["by_endpoint"]["POST /api/public/users/mass_update_custom_attributes/"] == 1


@pytest.mark.postgres
def test_postgres_warehouse_source_streams_with_a_server_side_cursor(dag_harness, sandbox, postgres_dsn, monkeypatch):
    import psycopg2

    table = "userattrs_op_test_segment"
    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE TABLE {table} AS SELECT 'd' || g AS distinct_id, g AS visits FROM generate_series(1, 2500) g"
        )
    monkeypatch.setenv("AIRFLOW_CONN_PGWH", "postgres://postgres@127.0.0.1:5432/test")
    try:
        result = dag_harness.run(
            "pg_source",
            f"""
            UpdateUserAttributesOperator(
                task_id="push", conn_id="fyno_default", user_id_field="distinct_id", sql_conn_id="pgwh",
                sql="SELECT distinct_id, visits FROM {table} ORDER BY visits", fetch_size=500,
            )
            """,
        )
    finally:
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    assert result.state == "success"
    assert result.xcom("push")["succeeded"] == 2500
    assert users_of(sandbox, "fyno")["d2500"] == {"visits": 2500}
    assert sandbox.stats()["requests"]["total"] == 25  # Fyno batches of 100


def test_mapped_chunks_each_report_and_show_their_label(dag_harness, sandbox):
    result = dag_harness.run(
        "mapped",
        """
        chunks = [[{"user_id": f"c{c}-{i}", "seen": True} for i in range(10)] for c in range(3)]
        UpdateUserAttributesOperator.partial(task_id="push", conn_id="altatech_default").expand(records=chunks)
        """,
    )
    assert result.state == "success"
    assert [result.xcom("push", map_index=i)["succeeded"] for i in range(3)] == [10, 10, 10]
    assert result.tasks[("push", 1)][2] == "records (10 users)"
    assert len(sandbox.state("altatech")) == 30


def test_dry_run_sends_nothing_and_previews(dag_harness, sandbox):
    result = dag_harness.run(
        "dry",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="fyno_default", user_id_field="distinct_id", dry_run=True,
            records=[{"distinct_id": "d1", "name": "x" * 300}, {"distinct_id": "d2", "name": "Ann"}],
            max_failure_ratio=1.0,
        )
        """,
    )
    report = result.xcom("push")
    assert report["dry_run"] is True and report["would_send"] == 1 and report["failed"] == 1
    assert "255" in report["failures"][0]["reason"]
    assert report["preview"] == [{"user_id": "d2", "attributes": {"name": "Ann"}}]
    assert sandbox.stats()["requests"]["total"] == 0


def test_task_retry_resends_only_what_failed(dag_harness, sandbox):
    # Two 503s exhaust the single HTTP attempt of two users; the task fails and Airflow retries it.
    sandbox.script([{"status": 503}, {"status": 503}])
    result = dag_harness.run(
        "retry",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", user_id_field="email", retries=2, retry_delay=timedelta(0),
            records=[{"email": f"r{i}@example.com", "n": str(i)} for i in range(30)],
            checkpoint_every=7, hook_params={"max_attempts": 1, "concurrency": 4},
        )
        """,
    )
    assert result.state == "success"
    _state, tries, _ = result.tasks[("push", -1)]
    assert tries == 2
    report = result.xcom("push")
    assert (report["total"], report["succeeded"], report["failed"]) == (30, 30, 0)
    assert report["resumed"] == {"offset": 30, "replayed_users": 2}
    # 30 deliveries + 2 refused attempts: nothing delivered by the first try was sent again
    assert sandbox.stats()["requests"]["total"] == 32
    assert len(sandbox.state("dx")) == 30


def test_last_try_with_transient_failures_reports_them_retryable_and_replay_resends_once(
    dag_harness, sandbox, tmp_path
):
    from airflow_provider_userattrs.replay import replay

    sandbox.script([{"status": 503, "vendor": "altatech"}] * 3)
    result = dag_harness.run(
        "replay_src",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="altatech_default", max_failure_ratio=0.5,
            records=[{"user_id": f"z{i}", "n": i} for i in range(10)],
            hook_params={"max_attempts": 1, "concurrency": 1},
        )
        """,
    )
    report = result.xcom("push", key="report")
    assert result.state == "success"  # within the ratio, and no task retry left
    assert (report["failed"], report["retryable_users"]) == (3, 3)
    assert all(f["retryable"] for f in report["failures"])
    assert len(sandbox.state("altatech")) == 7
    first = replay(report["failure_file"], "altatech_default")
    assert (first["to_resend"], first["delivered"], first["failed"]) == (3, 3, 0), first
    assert len(sandbox.state("altatech")) == 10
    before = sandbox.stats()["requests"]["total"]
    second = replay(report["failure_file"], "altatech_default")
    assert second["to_resend"] == 0 and sandbox.stats()["requests"]["total"] == before

    # the operator option does the same, and also records what it delivered
    sandbox.reset()
    sandbox.script([{"status": 503, "vendor": "altatech"}] * 3)
    result = dag_harness.run(
        "replay_src2",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="altatech_default", max_failure_ratio=0.5,
            records=[{"user_id": f"z{i}", "n": i} for i in range(10)],
            hook_params={"max_attempts": 1, "concurrency": 1},
        )
        """,
    )
    failure_file = result.xcom("push", key="report")["failure_file"]
    replayed = dag_harness.run(
        "replay_op",
        f"""
        UpdateUserAttributesOperator(task_id="again", conn_id="altatech_default", replay_from={failure_file!r})
        """,
    )
    assert replayed.xcom("again")["succeeded"] == 3
    assert replay(failure_file, "altatech_default")["to_resend"] == 0


def test_auth_error_fails_without_retry_and_no_secret_in_report(dag_harness, sandbox, monkeypatch):
    secret = "wrong-token-never-to-be-seen-0001"
    monkeypatch.setenv("AIRFLOW_CONN_BADDX", json.dumps({"conn_type": "dx", "host": sandbox.url, "password": secret}))
    result = dag_harness.run(
        "auth",
        """
        UpdateUserAttributesOperator(task_id="push", conn_id="baddx", user_id_field="email", retries=3,
                                     records=[{"email": "a@example.com", "x": "1"}])
        """,
    )
    state, tries, _ = result.tasks[("push", -1)]
    assert state == "failed" and tries == 1
    report = result.xcom("push", key="report")
    assert "invalid_auth" in report["error"] and secret not in json.dumps(report)


def test_init_does_no_io_and_rejects_contradictory_sources():
    operator = UpdateUserAttributesOperator(task_id="t", conn_id="does_not_exist", sql="SELECT 1", sql_conn_id="nope")
    assert operator.conn_id == "does_not_exist"
    with pytest.raises(ValueError, match="not both"):
        UpdateUserAttributesOperator(task_id="t2", conn_id="x", records=[], sql="SELECT 1")
    with pytest.raises(ValueError, match="give user_ids"):
        MassUpdateOperator(task_id="t3", conn_id="x", attribute="a", value=1)
    assert {"sql", "records", "conn_id", "sql_conn_id"} <= set(UpdateUserAttributesOperator.template_fields)
    assert {"attribute", "value", "user_ids"} <= set(MassUpdateOperator.template_fields)
