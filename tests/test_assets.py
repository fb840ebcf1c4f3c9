"""Assets: the ``userattrs://`` scheme as Airflow normalises it, and the event every successful sync emits."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_provider_userattrs.assets import (
    SYNC_ALIAS_NAME,
    SyncEventExtra,
    convert_asset_to_openlineage,
    create_asset,
    emits_event,
    sanitize_uri,
    with_sync_alias,
)
from airflow_provider_userattrs.compat import alias_event_extra
from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from tests.worker_process import run_dag_in_process, write_dag


def test_airflow_normalises_userattrs_uris_through_the_provider():
    # Asset() runs the normaliser registered in the provider metadata (ProvidersManagerTaskRuntime)
    assert Asset("userattrs://DX/dx_default").uri == "userattrs://dx/dx_default"
    assert Asset("userattrs://usercom/crm/?b=1#frag").uri == "userattrs://usercom/crm"
    assert Asset("userattrs://dx/dx_default") == create_asset(vendor="dx", conn_id="dx_default")


@pytest.mark.parametrize(
    "uri",
    [
        "userattrs://dx_default",  # the connection without its vendor
        "userattrs://hubspot/crm",  # not a vendor of this provider
        "userattrs://dx/a/b",  # one connection id, not a path
        "userattrs://dx/",
        "userattrs://user:secret@dx/crm",  # no credentials in an asset
    ],
)
def test_the_normaliser_refuses_uris_no_sync_emits(uri):
    with pytest.raises(ValueError, match="userattrs://"):
        sanitize_uri(urlsplit(uri))


def test_conn_ids_are_percent_encoded_once():
    asset = create_asset(vendor="fyno", conn_id="crm prod")
    assert asset.uri == "userattrs://fyno/crm%20prod"
    assert sanitize_uri(urlsplit(asset.uri)).geturl() == asset.uri


def test_the_openlineage_converter_names_the_operators_output_dataset():
    dataset = convert_asset_to_openlineage(create_asset(vendor="usercom", conn_id="crm prod"), None)
    assert (dataset.namespace, dataset.name) == ("userattrs://usercom", "crm prod")


def test_every_sync_operator_lists_the_alias_once_and_keeps_user_outlets():
    mine = Asset("s3://bucket/exports")
    op = UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[], outlets=[mine])
    aliases = [o for o in op.outlets if isinstance(o, AssetAlias)]
    assert mine in op.outlets and [a.name for a in aliases] == [SYNC_ALIAS_NAME]
    assert with_sync_alias(with_sync_alias(None)) == [AssetAlias(SYNC_ALIAS_NAME)]
    mapped = MassUpdateOperator.partial(task_id="m", conn_id="dx_default", attribute="a", value=1)
    assert AssetAlias(SYNC_ALIAS_NAME) in mapped.kwargs["outlets"]


def test_the_extra_holds_counts_and_attribute_names_only():
    report = {
        "vendor": "dx",
        "conn_id": "dx_default",
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "failures": [{"user_id": "ann@example.com", "reason": "x"}],
        "failure_file": "file:///tmp/f.jsonl",
    }
    extra = SyncEventExtra.from_report(report, ["plan", "ltv"]).to_extra()
    assert extra == {
        "vendor": "dx",
        "conn_id": "dx_default",
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "attributes": ["plan", "ltv"],
    }
    assert emits_event(report)
    assert not emits_event({**report, "dry_run": True})
    assert not emits_event({**report, "error": "the token was refused"})


def test_attribute_sources_follow_the_operator_parameters():
    renamed = UpdateUserAttributesOperator(
        task_id="a", conn_id="c", sql="SELECT 1", sql_conn_id="w", attributes={"lifetime_value": "ltv"}
    )
    assert renamed.attribute_sources().columns == {"ltv": "lifetime_value"}
    listed = UpdateUserAttributesOperator(task_id="b", conn_id="c", records=[], attributes=["plan"])
    assert listed.attribute_sources().names == ["plan"]
    records = [{"user_id": "u1", "plan": "pro"}, {"user_id": "u2", "score": 3}]
    assert UpdateUserAttributesOperator(task_id="r", conn_id="c", records=records).attribute_sources().names == [
        "plan",
        "score",
    ]
    mass = MassUpdateOperator(task_id="m", conn_id="c", attribute="churn", value="high", user_ids=[1])
    assert mass.attribute_sources().names == ["churn"] and mass.attribute_sources().columns == {}


# -- the events of real runs -----------------------------------------------------------------------------------


def asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
            .all()
        )
        return [
            {"extra": r.extra, "dag_id": r.source_dag_id, "run_id": r.source_run_id, "map_index": r.source_map_index}
            for r in rows
        ]


def test_a_mapped_sync_emits_one_event_per_chunk_with_its_counts(dag_harness):
    result = dag_harness.run(
        "assets_mapped",
        """
        UpdateUserAttributesOperator.partial(
            task_id="push", conn_id="dx_default", user_id_field="email", max_failure_ratio=0.5
        ).expand(records=[
            [{"email": "a1@example.com", "plan": "pro"}, {"email": "a2@example.invalid", "plan": "pro"}],
            [{"email": "b1@example.com", "plan": "free", "score": 3}],
        ])
        """,
    )
    assert result.state == "success", result.tasks
    events = [e for e in asset_events("userattrs://dx/dx_default") if e["run_id"] == result.run_id]
    assert sorted(e["map_index"] for e in events) == [0, 1]
    by_chunk = {e["map_index"]: e["extra"] for e in events}
    assert by_chunk[0] == alias_event_extra(  # Airflow 3.0 cannot record the attributes list (compat.py)
        {"vendor": "dx", "conn_id": "dx_default", "total": 2, "succeeded": 1, "failed": 1, "attributes": ["plan"]}
    )
    assert by_chunk[1] == alias_event_extra({**by_chunk[1], "attributes": ["plan", "score"]})
    assert by_chunk[1]["total"] == 1
    assert "sandbox-token" not in json.dumps(events)


def test_failed_and_dry_run_tasks_emit_no_event(dag_harness):
    result = dag_harness.run(
        "assets_none",
        """
        UpdateUserAttributesOperator(
            task_id="dry", conn_id="fyno_default", records=[{"user_id": "d1", "plan": "pro"}], dry_run=True
        )
        UpdateUserAttributesOperator(
            task_id="rejected", conn_id="fyno_default", user_id_field="user_id",
            records=[{"user_id": "d2", "plan": "x" * 300}], retries=0,
        )
        """,
    )
    assert result.task_state("dry") == "success" and result.task_state("rejected") == "failed"
    assert [e for e in asset_events("userattrs://fyno/fyno_default") if e["run_id"] == result.run_id] == []


def test_a_sql_sync_names_the_query_columns(dag_harness, tmp_path, monkeypatch):
    import sqlite3

    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (email TEXT, plan TEXT, score INTEGER)")
        conn.execute("INSERT INTO people VALUES ('u1@example.com', 'pro', 3), ('u2@example.com', 'free', 5)")
    monkeypatch.setenv("AIRFLOW_CONN_ASSET_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    result = dag_harness.run(
        "assets_sql",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="dx_default", sql_conn_id="asset_warehouse", user_id_field="email",
            sql="SELECT email, plan, score FROM people ORDER BY email",
        )
        """,
    )
    assert result.state == "success", result.tasks
    (event,) = [e for e in asset_events("userattrs://dx/dx_default") if e["run_id"] == result.run_id]
    assert event["extra"] == alias_event_extra({**event["extra"], "attributes": ["plan", "score"]})
    assert event["extra"]["succeeded"] == 2


# -- the asset as Airflow knows it: no "inactive AssetModel" warning -------------------------------------------------

INACTIVE_WARNINGS = ("Emitting event for inactive AssetModel", "not found; cannot create asset event")


def register_dag_file(path, dag_id: str) -> None:
    """Parse a DAG file into the metadata DB as the DAG processor does (its assets made active), unpaused."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from airflow_provider_userattrs.compat import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()  # the DAG's bundle row (dags-folder), as Airflow's processes make it
    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    with create_session() as session:
        sync_bag_to_db(bag, "dags-folder", None, session=session)
        session.commit()
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": False})


def dx_connection(monkeypatch, sandbox, conn_id: str) -> None:
    conn = {"conn_type": "dx", "host": sandbox.url, "password": "sandbox-token", "extra": {"backoff_base": 0.01}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def queued_for(dag_id: str) -> list[str]:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).all()
        return [session.get(AssetModel, row.asset_id).name for row in rows]


def events_named(name: str, run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == name, AssetEvent.source_run_id == run_id)
            .all()
        )
        return [r.extra for r in rows]


def inactive_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(w in line for w in INACTIVE_WARNINGS)]


# These run ``dag.test()`` in a process of their own (tests/worker_process.py) and read its whole console output:
# what ``airflow dags test`` shows, task logs and Airflow's asset manager alike (in process, the log stream Airflow
# configured first would hide part of it from the test's capture).


def test_a_sync_whose_dataset_a_dag_uses_logs_no_warning_and_reaches_that_dag(dag_harness, sandbox, monkeypatch):
    # The consumer names the vendor dataset its own way: the event must go onto that asset, not a new one.
    dx_connection(monkeypatch, sandbox, "asset_crm")
    consumer = dag_harness.folder / "after_crm_sync.py"
    consumer.write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG, Asset\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('after_crm_sync', start_date=pendulum.datetime(2026, 1, 1), catchup=False,\n"
        "         schedule=[Asset(name='crm users', uri='userattrs://dx/asset_crm')]):\n"
        "    EmptyOperator(task_id='announce')\n"
    )
    register_dag_file(consumer, "after_crm_sync")
    body = """
    UpdateUserAttributesOperator.partial(
        task_id="push", conn_id="asset_crm", user_id_field="email"
    ).expand(records=[[{"email": "k1@example.com", "plan": "pro"}], [{"email": "k2@example.com", "plan": "x"}]])
    """
    result, output = run_dag_in_process(write_dag(dag_harness.folder, "assets_known", body), "assets_known")
    assert result.state == "success", result.tasks
    assert inactive_warnings(output) == []
    assert output.count("Asset event on userattrs://dx/asset_crm: 1 of 1 users delivered") == 2  # log lines stay
    events = events_named("crm users", result.run_id)
    assert len(events) == 2 and {e["succeeded"] for e in events} == {1}
    assert "crm users" in queued_for("after_crm_sync")  # the consumer DAG is queued by the event


def test_a_declared_outlet_gets_the_event_once_with_the_report(dag_harness, sandbox, monkeypatch):
    dx_connection(monkeypatch, sandbox, "asset_declared")
    body = """
    UpdateUserAttributesOperator(
        task_id="push", conn_id="asset_declared", user_id_field="email",
        records=[{"email": "d1@example.com", "plan": "pro"}],
        outlets=[create_asset(vendor="dx", conn_id="asset_declared")],
    )
    """
    header = "from airflow_provider_userattrs.assets import create_asset"
    path = write_dag(dag_harness.folder, "assets_declared", body, header)
    register_dag_file(path, "assets_declared")  # as the DAG processor would: the declared outlet is active
    result, output = run_dag_in_process(path, "assets_declared")
    assert result.state == "success", result.tasks
    assert inactive_warnings(output) == []
    (extra,) = events_named("userattrs://dx/asset_declared", result.run_id)  # one event, not one per way
    assert extra["succeeded"] == 1 and extra.get("attributes", ["plan"]) == ["plan"]  # 3.0 drops lists (compat)


def test_a_dataset_no_dag_uses_still_gets_its_event(dag_harness, sandbox, monkeypatch):
    dx_connection(monkeypatch, sandbox, "asset_nobody")
    body = """
    UpdateUserAttributesOperator.partial(
        task_id="push", conn_id="asset_nobody", user_id_field="email"
    ).expand(records=[[{"email": "n1@example.com", "plan": "pro"}], [{"email": "n2@example.com", "plan": "x"}]])
    """
    result, output = run_dag_in_process(write_dag(dag_harness.folder, "assets_unknown", body), "assets_unknown")
    assert result.state == "success", result.tasks
    assert output.count("No DAG uses userattrs://dx/asset_nobody yet") == 1  # once, not once per chunk
    assert len(events_named("userattrs://dx/asset_nobody", result.run_id)) == 2
    # Airflow's own warning, which the tests above would see: this output does carry the asset manager's lines.
    assert inactive_warnings(output)
