"""Incremental sync: only what changed since the last delivered values goes out, in a real Airflow run."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytestmark = pytest.mark.integration

USERS = 200


def make_segment(path, users: int = USERS) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE IF EXISTS segment")
        conn.execute("CREATE TABLE segment (email TEXT PRIMARY KEY, tier TEXT, ltv REAL, region TEXT)")
        conn.executemany(
            "INSERT INTO segment VALUES (?, ?, ?, ?)",
            [(f"i{i:04d}@example.com", f"t{i % 5}", i * 1.5, "EU" if i % 2 else "US") for i in range(users)],
        )


def execute(path, sql: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql)


SYNC = """
UpdateUserAttributesOperator(
    task_id="push", conn_id="dx_default", user_id_field="email", sql_conn_id="wh", incremental=True,
    sql="SELECT email, tier, ltv, region FROM segment", checkpoint_every=50, retries=1, retry_delay=timedelta(0),
    full_refresh="{{ dag_run.conf.get('full_refresh', False) }}", state_key="crm-sync",
)
"""


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    path = tmp_path / "wh.db"
    make_segment(path)
    monkeypatch.setenv("AIRFLOW_CONN_WH", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def requests(sandbox) -> int:
    return sandbox.stats()["requests"]["total"]


def test_rerun_without_change_sends_nothing_and_one_percent_change_sends_only_those(dag_harness, sandbox, warehouse):
    first = dag_harness.run("inc_a", SYNC)
    assert first.xcom("push")["succeeded"] == USERS and requests(sandbox) == USERS
    assert first.xcom("push")["incremental"]["changed_users"] == USERS

    again = dag_harness.run("inc_a", SYNC)
    assert again.state == "success" and again.xcom("push")["total"] == 0
    assert requests(sandbox) == USERS  # not one request more

    execute(warehouse, "UPDATE segment SET tier = 'vip' WHERE email IN ('i0007@example.com', 'i0042@example.com')")
    changed = dag_harness.run("inc_a", SYNC)
    report = changed.xcom("push")
    assert report["succeeded"] == 2 and requests(sandbox) == USERS + 2
    assert sandbox.state("dx")["i0007@example.com"] == {"tier": "vip", "ltv": "10.5", "region": "EU"}
    # only the changed attribute went: the sandbox records the last request's path, not bodies, so check state
    refreshed = dag_harness.run("inc_a", SYNC, conf={"full_refresh": True})
    assert refreshed.xcom("push")["succeeded"] == USERS and requests(sandbox) == 2 * USERS + 2


def test_null_removes_and_a_user_leaving_the_segment_is_unset(dag_harness, sandbox, warehouse):
    dag_harness.run("inc_b", SYNC)
    execute(warehouse, "UPDATE segment SET region = NULL WHERE email = 'i0003@example.com'")
    execute(warehouse, "DELETE FROM segment WHERE email = 'i0004@example.com'")
    result = dag_harness.run("inc_b", SYNC)
    report = result.xcom("push")
    assert report["incremental"]["changed_users"] == 1 and report["incremental"]["removed_users"] == 1
    assert sandbox.state("dx")["i0003@example.com"] == {"tier": "t3", "ltv": "4.5"}
    assert sandbox.state("dx")["i0004@example.com"] == {}  # DX null removes every synced attribute
    with sqlite3.connect(warehouse) as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM userattrs_sync_state WHERE user_id = 'i0004@example.com'"
        ).fetchone() == (0,)
    assert dag_harness.run("inc_b", SYNC).xcom("push")["total"] == 0


def test_a_failed_user_is_sent_again_next_run(dag_harness, sandbox, warehouse):
    sandbox.register_unknown_users("dx", ["i0010@example.com"])
    first = dag_harness.run(
        "inc_c", SYNC.replace("checkpoint_every=50,", "checkpoint_every=50, max_failure_ratio=0.1,")
    )
    assert first.xcom("push")["failed"] == 1
    sandbox.memory.unknown["dx"].clear()
    before = requests(sandbox)
    second = dag_harness.run("inc_c", SYNC)
    assert second.xcom("push")["succeeded"] == 1 and requests(sandbox) == before + 1
    assert "i0010@example.com" in sandbox.state("dx")


def test_crash_between_delivery_and_state_write_resends_never_skips(dag_harness, sandbox, warehouse, monkeypatch):
    from airflow_provider_userattrs.sync import incremental

    original = incremental.WarehouseState.record
    calls = {"n": 0}

    def crash_once(self, updates):
        calls["n"] += 1
        if calls["n"] == 2:  # the second chunk was delivered, then the worker "died" before writing its state
            raise RuntimeError("simulated crash between delivery and state write")
        return original(self, updates)

    monkeypatch.setattr(incremental.WarehouseState, "record", crash_once)
    result = dag_harness.run("inc_d", SYNC)
    assert result.state == "success" and result.tasks[("push", -1)][1] == 2  # failed once, retried
    # the retry recomputed the difference: chunk 1 was settled, chunk 2 went again, nothing was skipped
    assert requests(sandbox) == USERS + 50
    assert len(sandbox.state("dx")) == USERS
    assert dag_harness.run("inc_d2", SYNC.replace("crm-sync", "crm-sync")).xcom("push")["total"] == 0


def test_records_source_keeps_state_in_object_storage(dag_harness, sandbox, tmp_path):
    body = """
    UpdateUserAttributesOperator(
        task_id="push", conn_id="fyno_default", user_id_field="distinct_id", incremental=True,
        records=[{"distinct_id": f"r{i}", "plan": "pro" if i < 3 else "free"} for i in range(10)],
    )
    """
    dag_harness.run("inc_e", body)
    assert requests(sandbox) == 1  # one Fyno batch
    dag_harness.run("inc_e", body)
    assert requests(sandbox) == 1
    assert list((tmp_path / "failures" / "_state").glob("*.json"))


def test_altatech_cannot_remove_so_a_leaver_is_reported_skipped(dag_harness, sandbox, tmp_path, monkeypatch):
    path = tmp_path / "alta.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE s (user_id TEXT, tier TEXT)")
        conn.executemany("INSERT INTO s VALUES (?, ?)", [("a1", "gold"), ("a2", "silver")])
    monkeypatch.setenv("AIRFLOW_CONN_ALTA_WH", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    body = """
    UpdateUserAttributesOperator(task_id="push", conn_id="altatech_default", sql_conn_id="alta_wh",
                                 sql="SELECT user_id, tier FROM s", incremental=True)
    """
    dag_harness.run("inc_f", body)
    execute(path, "DELETE FROM s WHERE user_id = 'a2'")
    report = dag_harness.run("inc_f", body).xcom("push")
    assert report["incremental"]["removed_users"] == 1 and report["skipped_attributes"] == 1
    assert sandbox.state("altatech")["a2"] == {"tier": "silver"}  # AltaTech keeps it: nothing can remove it


@pytest.mark.postgres
def test_postgres_state_table_and_diff(dag_harness, sandbox, postgres_dsn, monkeypatch):
    import psycopg2

    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS inc_segment; DROP TABLE IF EXISTS userattrs_sync_state_t")
        cur.execute(
            "CREATE TABLE inc_segment AS SELECT 'pg' || g || '@example.com' AS email, (g % 4)::text AS tier, "
            "g * 0.5 AS ltv FROM generate_series(1, 300) g"
        )
    monkeypatch.setenv("AIRFLOW_CONN_PGWH", "postgres://postgres@127.0.0.1:5432/test")
    body = """
    UpdateUserAttributesOperator(task_id="push", conn_id="dx_default", user_id_field="email", sql_conn_id="pgwh",
                                 sql="SELECT email, tier, ltv FROM inc_segment", incremental=True,
                                 state_table="userattrs_sync_state_t")
    """
    try:
        assert dag_harness.run("inc_pg", body).xcom("push")["succeeded"] == 300
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute("UPDATE inc_segment SET ltv = ltv + 1 WHERE email IN ('pg1@example.com', 'pg2@example.com')")
        report = dag_harness.run("inc_pg", body).xcom("push")
        assert report["succeeded"] == 2 and sandbox.stats()["requests"]["total"] == 302
    finally:
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS inc_segment; DROP TABLE IF EXISTS userattrs_sync_state_t")


def test_mass_update_incremental_sends_only_new_members_and_unsets_leavers(dag_harness, sandbox):
    def body(ids):
        return f"""
        MassUpdateOperator(task_id="flag", conn_id="dx_default", attribute="churn", value="high", incremental=True,
                           user_ids={ids!r})
        """

    dag_harness.run("inc_mass", body([f"m{i}@example.com" for i in range(5)]))
    assert requests(sandbox) == 5
    report = dag_harness.run("inc_mass", body([f"m{i}@example.com" for i in range(1, 7)])).xcom("flag")
    assert report["incremental"]["changed_users"] == 2 and report["incremental"]["removed_users"] == 1
    assert requests(sandbox) == 5 + 3
    assert sandbox.state("dx")["m0@example.com"] == {} and sandbox.state("dx")["m6@example.com"] == {"churn": "high"}


def test_sqlite_state_writes_while_the_diff_is_still_being_read(dag_harness, sandbox, warehouse):
    # More rows than one fetch: the diff is still open when the first chunk's state is written. SQLite would
    # block that write behind a reader on another connection (a hang at 1M rows before the fix).
    body = SYNC.replace("checkpoint_every=50,", "checkpoint_every=10, fetch_size=25,")
    first = dag_harness.run("inc_g", body)
    assert first.state == "success" and first.xcom("push")["succeeded"] == USERS
    assert dag_harness.run("inc_g", body).xcom("push")["total"] == 0


def test_duckdb_state_table_and_diff(dag_harness, sandbox, tmp_path, monkeypatch):
    """The third engine, through its Airflow provider's hook: first run, unchanged re-run, 1 % changed."""
    import duckdb

    path = str(tmp_path / "wh.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute(
            "CREATE TABLE segment AS SELECT 'dd' || g || '@example.com' AS email, CAST(g % 4 AS VARCHAR) AS tier, "
            "g * 0.5 AS ltv FROM range(1, 301) t(g)"
        )
    monkeypatch.setenv("AIRFLOW_CONN_DDWH", json.dumps({"conn_type": "duckdb", "host": path}))
    body = """
    UpdateUserAttributesOperator(task_id="push", conn_id="dx_default", user_id_field="email", sql_conn_id="ddwh",
                                 sql="SELECT email, tier, ltv FROM segment", incremental=True, checkpoint_every=100)
    """
    first = dag_harness.run("inc_duckdb", body).xcom("push")
    assert first["succeeded"] == 300 and first["incremental"]["state"].endswith("DuckDB)")
    assert dag_harness.run("inc_duckdb", body).xcom("push")["total"] == 0
    assert requests(sandbox) == 300
    with duckdb.connect(path) as conn:
        conn.execute(
            "UPDATE segment SET ltv = ltv + 1 WHERE email IN ('dd1@example.com', 'dd2@example.com', 'dd3@example.com')"
        )
    report = dag_harness.run("inc_duckdb", body).xcom("push")
    assert report["succeeded"] == 3 and requests(sandbox) == 303
    assert float(sandbox.state("dx")["dd2@example.com"]["ltv"]) == 2.0


# -- data safety: null_values="skip", max_removals ---------------------------------------------------------


def state_rows(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM userattrs_sync_state").fetchone()[0]


def test_null_values_skip_keeps_the_vendors_value_and_the_delivered_value_in_the_state(dag_harness, sandbox, warehouse):
    skipping = SYNC.replace('state_key="crm-sync",', 'state_key="crm-sync", null_values="skip",')
    dag_harness.run("inc_skip", SYNC)
    execute(warehouse, "UPDATE segment SET region = NULL WHERE email IN ('i0003@example.com', 'i0005@example.com')")
    execute(warehouse, "UPDATE segment SET region = NULL, tier = 'vip' WHERE email = 'i0007@example.com'")
    execute(warehouse, "DELETE FROM segment WHERE email = 'i0004@example.com'")
    report = dag_harness.run("inc_skip", skipping).xcom("push")
    assert (report["incremental"]["changed_users"], report["incremental"]["removed_users"]) == (3, 1)
    assert (report["total"], report["succeeded"], report["skipped_attributes"]) == (4, 4, 3)  # counted once each
    assert requests(sandbox) == USERS + 2  # i0007's tier and the leaver; nothing for i0003 and i0005
    dx = sandbox.state("dx")
    assert dx["i0003@example.com"] == {"tier": "t3", "ltv": "4.5", "region": "EU"}  # the vendor kept its region
    assert dx["i0007@example.com"] == {"tier": "vip", "ltv": "10.5", "region": "EU"}
    assert dx["i0004@example.com"] == {}  # a user who left is still removed (remove_missing)
    assert state_rows(warehouse) == 3 * USERS - 3  # the leaver's rows only: the skipped regions stay delivered
    # the region coming back as it was is no change: nothing to send
    execute(warehouse, "UPDATE segment SET region = 'EU' WHERE email IN ('i0003@example.com', 'i0005@example.com')")
    execute(warehouse, "UPDATE segment SET region = 'EU' WHERE email = 'i0007@example.com'")
    assert dag_harness.run("inc_skip", skipping).xcom("push")["total"] == 0 and requests(sandbox) == USERS + 2


LIMITED = SYNC.replace(
    'state_key="crm-sync",', 'state_key="crm-sync", max_removals="{{ dag_run.conf.get(\'max_removals\', 0.05) }}",'
)


def test_max_removals_stops_a_truncated_segment_before_sending_anything(dag_harness, sandbox, warehouse):
    dag_harness.run("inc_limit", LIMITED)
    execute(warehouse, "DELETE FROM segment WHERE email >= 'i0020@example.com'")  # 180 of 200 users gone
    stopped = dag_harness.run("inc_limit", LIMITED)
    assert stopped.tasks[("push", -1)][:2] == ("failed", 1)  # AirflowFailException: no retry (retries=1)
    error = stopped.xcom("push", key="report")["error"]  # the report is pushed, with the numbers
    assert error.startswith("max_removals=0.05: this sync would clear 0 attributes")
    assert "remove 180 users (90.0% of the 200 users it has delivered) with their 540 attributes" in error
    assert "nothing was sent" in error
    assert requests(sandbox) == USERS and len(sandbox.state("dx")["i0150@example.com"]) == 3
    assert state_rows(warehouse) == 3 * USERS
    meant = dag_harness.run("inc_limit", LIMITED, conf={"max_removals": 200})  # a count, raised for one run
    assert meant.state == "success" and meant.xcom("push")["incremental"]["removed_users"] == 180
    assert sandbox.state("dx")["i0150@example.com"] == {} and state_rows(warehouse) == 3 * 20


def test_max_removals_counts_the_attributes_a_broken_join_would_clear_unless_nulls_are_skipped(
    dag_harness, sandbox, warehouse
):
    dag_harness.run("inc_join", LIMITED)
    execute(warehouse, "UPDATE segment SET ltv = NULL, region = NULL WHERE email >= 'i0100@example.com'")
    stopped = dag_harness.run("inc_join", LIMITED, conf={"max_removals": 150})
    assert stopped.tasks[("push", -1)][:2] == ("failed", 1) and requests(sandbox) == USERS
    error = stopped.xcom("push", key="report")["error"]
    assert error.startswith("max_removals=150: this sync would clear 200 attributes (33.3% of the 600")
    assert "and remove no user, more than max_removals allows (150 of each)" in error
    skipping = LIMITED.replace('state_key="crm-sync",', 'state_key="crm-sync", null_values="skip",')
    kept = dag_harness.run("inc_join", skipping, conf={"max_removals": 150})
    report = kept.xcom("push")
    assert kept.state == "success" and report["skipped_attributes"] == 200 and report["succeeded"] == 100
    assert requests(sandbox) == USERS and sandbox.state("dx")["i0150@example.com"]["region"] == "US"


def test_max_removals_on_the_object_state_of_a_mass_update(dag_harness, sandbox):
    def body(ids):
        return f"""
        MassUpdateOperator(task_id="flag", conn_id="dx_default", attribute="churn", value="high", incremental=True,
                           user_ids={ids!r}, max_removals=3, retries=2)
        """

    dag_harness.run("inc_mass_limit", body([f"m{i}@example.com" for i in range(10)]))
    stopped = dag_harness.run("inc_mass_limit", body([f"m{i}@example.com" for i in range(6)]))
    assert stopped.tasks[("flag", -1)][:2] == ("failed", 1) and requests(sandbox) == 10
    assert "remove 4 users (40.0% of the 10 users it has delivered)" in stopped.xcom("flag", key="report")["error"]
    within = dag_harness.run("inc_mass_limit", body([f"m{i}@example.com" for i in range(1, 10)]))
    assert within.state == "success" and within.xcom("flag")["incremental"]["removed_users"] == 1
