"""The demo's asset events go to assets Airflow knows: no "Emitting event for inactive AssetModel" warning.

The syncs name their vendor dataset (``userattrs://<vendor>/<conn_id>``) only at run time, through the provider's
asset alias. Airflow keeps an asset active while a DAG uses it; the demo's ``userattrs_after_delivery`` is
scheduled on the datasets of the four default connections, and ``scripts/demo.sh`` registers the DAGs (``airflow
dags reserialize``) before its first sync, so every event of the demo lands on an active asset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_userattrs.assets import asset_uri
from tests.conftest import REPO_ROOT, sandbox_connections, use_dags_folder
from tests.dags.test_dags import DAGS, sqlite_warehouse
from tests.test_assets import asset_events, inactive_warnings, queued_for
from tests.worker_process import run_dag_in_process

CONSUMER = "userattrs_after_delivery"
DEMO_SCRIPT = (REPO_ROOT / "scripts" / "demo.sh").read_text()


def scheduled_assets(condition: Any) -> Iterator[Any]:
    """The assets of a DAG's schedule condition (``Asset``, ``AssetAny``, ``AssetAll``, nested)."""
    from airflow.sdk import Asset

    if isinstance(condition, Asset):
        yield condition
    for part in getattr(condition, "objects", ()):
        yield from scheduled_assets(part)


def demo_dags() -> dict[str, Any]:
    from airflow_provider_userattrs.compat import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


def test_every_vendor_dataset_the_example_dags_sync_to_is_one_a_dag_is_scheduled_on():
    dags = demo_dags()
    scheduled = {a.uri for dag in dags.values() for a in scheduled_assets(dag.timetable.asset_condition)}
    # what the syncs can be pointed at: each DAG's conn_id param (its choices), "<vendor>_default" in the demo
    conn_ids = set()
    for dag in dags.values():
        param = dag.params.get_param("conn_id") if "conn_id" in dag.params else None
        if param is not None:
            conn_ids |= set(param.schema.get("enum") or [param.value])
    assert conn_ids == {"altatech_default", "fyno_default", "dx_default", "usercom_default"}
    emitted = {asset_uri(conn_id.removesuffix("_default"), conn_id) for conn_id in conn_ids}
    assert emitted <= scheduled, "a dataset no DAG is scheduled on: Airflow warns on each of its events"
    assert {a.uri for a in scheduled_assets(dags[CONSUMER].timetable.asset_condition)} == emitted


def test_the_demo_registers_the_dags_before_its_first_sync_and_flags_the_warning():
    registered = DEMO_SCRIPT.index('"$AIRFLOW" dags reserialize')
    first_run = min(m.start() for m in re.finditer(r'"\$AIRFLOW" dags test', DEMO_SCRIPT))
    assert registered < first_run
    assert "Emitting event for inactive AssetModel" in DEMO_SCRIPT  # the demo fails when Airflow says it again


@pytest.fixture
def demo_db(tmp_path, monkeypatch, airflow_db, sandbox) -> Iterator[Any]:
    """The example DAGs registered in the metadata DB as ``airflow dags reserialize`` does, the consumer unpaused;
    afterwards paused again with nothing queued for it (the DB is shared by the session's tests)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from tests.test_assets import register_dag_file

    use_dags_folder(monkeypatch, DAGS)
    monkeypatch.setenv("USERATTRS_FAILURE_PATH", f"file://{tmp_path / 'failures'}")
    for name, value in sandbox_connections(sandbox.url).items():
        monkeypatch.setenv(name, value)
    register_dag_file(DAGS, CONSUMER)
    try:
        yield tmp_path
    finally:
        with create_session() as session:
            session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == CONSUMER).delete()
            session.query(DagModel).filter(DagModel.dag_id == CONSUMER).update({"is_paused": True})


@pytest.mark.integration
def test_the_demo_sync_emits_on_known_assets_without_airflow_s_warning_and_queues_the_consumer(
    demo_db, monkeypatch, sandbox
):
    sqlite_warehouse(demo_db, monkeypatch, users=300)
    result, output = run_dag_in_process(DAGS / "userattrs_warehouse_sync.py", "userattrs_warehouse_sync")
    assert result.state == "success", result.tasks
    assert inactive_warnings(output) == []
    assert "No DAG uses userattrs://dx/dx_default" not in output
    events = [e for e in asset_events("userattrs://dx/dx_default") if e["run_id"] == result.run_id]
    assert events and all(e["extra"]["vendor"] == "dx" for e in events)
    assert "userattrs://dx/dx_default" in queued_for(CONSUMER)
