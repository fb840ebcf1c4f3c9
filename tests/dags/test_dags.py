"""The example DAGs: they parse cleanly, and run end to end for real against the sandbox and a warehouse."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from airflow_provider_userattrs.demo.warehouse import build_warehouse
from tests.conftest import REPO_ROOT, run_dag_file, sandbox_connections, use_dags_folder

DAGS = REPO_ROOT / "dags"
DAG_IDS = {
    "userattrs_warehouse_sync",
    "userattrs_mass_update",
    "userattrs_manual_update",
    "userattrs_build_attributes",
    "userattrs_on_attributes_updated",
    "userattrs_after_delivery",
}


def test_every_dag_parses_without_errors_or_top_level_io(monkeypatch):
    from airflow_provider_userattrs.compat import DagBag

    # No connection is defined: parsing must not need one (no I/O at the top level of a DAG file).
    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(name)
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    assert time.perf_counter() - started < 30
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS
    for dag in bag.dags.values():
        assert dag.tags and "userattrs" in dag.tags
        assert dag.doc_md and len(dag.doc_md) > 40
        assert all(task.owner == "data-platform" for task in dag.tasks)


def test_manual_trigger_form_refuses_invalid_input():
    from airflow.sdk.definitions.param import ParamsDict

    from airflow_provider_userattrs.compat import ParamValidationError
    from tests.conftest import load_dag

    dag = load_dag(DAGS / "userattrs_manual_update.py", "userattrs_manual_update")
    good = {"conn_id": "dx_default", "user_ids": ["a@example.com"], "attribute": "plan", "value": "pro"}
    bad_inputs = [
        {**good, "conn_id": "postgres_default"},  # not a vendor connection
        {**good, "user_ids": []},  # nobody to update
        {**good, "attribute": ""},  # empty name
        {**good, "attribute": "x" * 256},  # too long for every vendor
        {**good, "attribute": " padded "},
        {**good, "user_ids": "a@example.com"},  # not a list
    ]
    for conf in bad_inputs:
        params = ParamsDict(dag.params)
        with pytest.raises(ParamValidationError):
            params.update(conf)
            params.validate()
    params = ParamsDict(dag.params)
    params.update(good)
    params.validate()
    for param in dag.params.values():
        assert param.schema.get("title"), param


@pytest.fixture
def demo_env(tmp_path, monkeypatch, airflow_db, sandbox):
    use_dags_folder(monkeypatch, DAGS)
    monkeypatch.setenv("USERATTRS_FAILURE_PATH", f"file://{tmp_path / 'failures'}")
    for name, value in sandbox_connections(sandbox.url).items():
        monkeypatch.setenv(name, value)
    return tmp_path


def sqlite_warehouse(tmp_path, monkeypatch, users: int = 600) -> Path:
    path = tmp_path / "warehouse.db"
    build_warehouse(str(path), users=users)
    monkeypatch.setenv("AIRFLOW_CONN_USERATTRS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def segment(path: Path, where: str, column: str) -> list:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute(f"SELECT {column} FROM user_attributes WHERE {where}")]


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_warehouse_sync_delivers_the_segment_and_reports_the_dirty_rows(demo_env, monkeypatch, sandbox, vendor):
    path = sqlite_warehouse(demo_env, monkeypatch)
    conf = {"conn_id": f"{vendor}_default", "chunk_size": 150}
    result = run_dag_file(DAGS / "userattrs_warehouse_sync.py", "userattrs_warehouse_sync", conf)
    assert result.state == "success", result.tasks
    chunks = [key for key in result.tasks if key[0] == "push_chunk"]
    assert len(chunks) >= 3
    reports = [result.xcom("push_chunk", "report", map_index=i) for _, i in chunks]
    summary = result.xcom("summarize")
    in_segment = segment(path, "order_count > 0", "user_id")
    assert summary["total"] == len(in_segment) == sum(r["total"] for r in reports)
    assert summary["succeeded"] + summary["failed"] == summary["total"]
    assert summary["failed"] <= 0.05 * summary["total"]  # the dirty rows, each reported with a reason
    if vendor == "altatech":  # takes any value: only the NULLs it cannot remove show, as skipped attributes
        assert summary["failed"] == 0 and sum(r["skipped_attributes"] for r in reports) > 0
    else:
        assert summary["failed"] > 0
    assert all(f["reason"] for r in reports for f in r["failures"])
    stored = sandbox.state(vendor)
    stored = stored["sandboxwsid/live"] if vendor == "fyno" else stored
    # users with no failure at all are exactly the succeeded ones, and the vendor holds them
    assert len(stored) >= summary["succeeded"]


def test_mass_update_flags_the_segment_with_one_call_per_chunk(demo_env, monkeypatch, sandbox):
    path = sqlite_warehouse(demo_env, monkeypatch)
    result = run_dag_file(DAGS / "userattrs_mass_update.py", "userattrs_mass_update")
    assert result.state == "success", result.tasks
    report = result.xcom("flag_segment")
    ids = segment(path, "churn_risk = 'high'", "usercom_id")
    known = [i for i in ids if i is not None and i < 900_000_000]
    assert report["total"] == len(ids) and report["succeeded"] == len(known)
    assert all(sandbox.state("usercom")[str(i)]["churn_risk_flag"] == "high" for i in known)


def test_manual_update_runs_with_the_form_values(demo_env, monkeypatch, sandbox):
    conf = {"conn_id": "fyno_default", "user_ids": ["d1", "d2"], "attribute": "plan", "value": "pro"}
    result = run_dag_file(DAGS / "userattrs_manual_update.py", "userattrs_manual_update", conf)
    assert result.state == "success", result.tasks
    assert result.xcom("update_users")["succeeded"] == 2
    assert sandbox.state("fyno")["sandboxwsid/live"] == {"d1": {"plan": "pro"}, "d2": {"plan": "pro"}}


@pytest.mark.postgres
def test_warehouse_sync_from_postgres(demo_env, monkeypatch, sandbox, postgres_dsn):
    import psycopg2

    build_warehouse(postgres_dsn, users=400)
    monkeypatch.setenv("AIRFLOW_CONN_USERATTRS_WAREHOUSE", "postgres://postgres@127.0.0.1:5432/test")
    try:
        result = run_dag_file(
            DAGS / "userattrs_warehouse_sync.py",
            "userattrs_warehouse_sync",
            {"conn_id": "dx_default", "chunk_size": 100},
        )
    finally:
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS userattrs_demo CASCADE")
    assert result.state == "success", result.tasks
    summary = result.xcom("summarize")
    assert summary["total"] > 300 and summary["succeeded"] >= 0.95 * summary["total"]
    # a user with one bad value still gets its other attributes, so it is stored yet counted as failed
    assert summary["succeeded"] <= len(sandbox.state("dx")) <= summary["total"]


@pytest.mark.slow
def test_readme_demo_command_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "USERATTRS"))}
    env.update({"DEMO_USERS": "800", "DEMO_VENDORS": "dx usercom"})
    done = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "userattrs_warehouse_sync: run success" in output
    assert "users delivered" in output and "failures: file://" in output
    assert "user_not_found" in output  # the dirty rows show up with their reasons
    assert "users stored per vendor" in output


def test_warehouse_sync_with_a_single_chunk(demo_env, monkeypatch, sandbox):
    sqlite_warehouse(demo_env, monkeypatch, users=120)
    conf = {"conn_id": "altatech_default", "chunk_size": 1000}
    result = run_dag_file(DAGS / "userattrs_warehouse_sync.py", "userattrs_warehouse_sync", conf)
    assert result.state == "success", result.tasks
    assert result.xcom("summarize")["total"] == result.xcom("push_chunk", "report", map_index=0)["total"]


def activate_outlet_assets(dag) -> None:
    """Mark the DAG's outlet assets active, as the DAG processor does once it parsed the file (Airflow 3.0's
    ``dag.test()`` does not, and refuses to run a task whose outlet is inactive; later lines activate them)."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.sdk import Asset
    from airflow.utils.session import create_session

    outlets = {(o.name, o.uri) for task in dag.tasks for o in task.outlets if isinstance(o, Asset)}
    with create_session() as session:
        for name, uri in outlets:
            if session.query(AssetModel).filter_by(name=name, uri=uri).first() is None:
                session.add(AssetModel(name=name, uri=uri))
            if session.query(AssetActive).filter_by(name=name, uri=uri).first() is None:
                session.add(AssetActive(name=name, uri=uri))


def test_build_dag_records_its_asset_and_the_consumer_syncs_only_changes(demo_env, monkeypatch, sandbox):
    from tests.conftest import load_dag
    from tests.test_assets import asset_events

    path = sqlite_warehouse(demo_env, monkeypatch, users=200)
    pipeline = DAGS / "userattrs_attributes_pipeline.py"
    activate_outlet_assets(load_dag(pipeline, "userattrs_build_attributes"))
    built = run_dag_file(pipeline, "userattrs_build_attributes")
    assert built.state == "success", built.tasks
    (event,) = [
        e for e in asset_events("warehouse://userattrs_warehouse/user_attributes") if e["run_id"] == built.run_id
    ]
    assert event["extra"] == {"users": len(segment(path, "1 = 1", "user_id"))}

    conf = {"conn_id": "dx_default"}
    first = run_dag_file(pipeline, "userattrs_on_attributes_updated", conf)
    assert first.state == "success", first.tasks
    report = first.xcom("push_changes", "report", map_index=0)
    assert report["incremental"]["changed_users"] > 0 and report["succeeded"] > 0
    (sync_event,) = [e for e in asset_events("userattrs://dx/dx_default") if e["run_id"] == first.run_id]
    assert sync_event["extra"]["succeeded"] == report["succeeded"]
    second = run_dag_file(pipeline, "userattrs_on_attributes_updated", conf)
    assert second.xcom("push_changes", "report", map_index=0)["incremental"]["changed_users"] == 0
