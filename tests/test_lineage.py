"""OpenLineage: the events of a real ``dag.test()`` run, written by the file transport and read back.

The run happens in a subprocess: Airflow registers the OpenLineage listener when it loads its plugins, once
per process, and only when a transport is configured; the test session's own process has none.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_userattrs import lineage
from tests.conftest import REPO_ROOT

pytest.importorskip("airflow.providers.openlineage")

DAG_FILE = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

with DAG("lineage_sync", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    UpdateUserAttributesOperator(
        task_id="push", conn_id="dx_default", sql_conn_id="lineage_warehouse", user_id_field="email",
        sql="SELECT p.email, p.lifetime_value, p.plan FROM people AS p ORDER BY p.email",
        attributes={"lifetime_value": "ltv", "plan": "plan"}, max_failure_ratio=0.5,
    )
    UpdateUserAttributesOperator(
        task_id="rejected", conn_id="dx_default", user_id_field="email", retries=0,
        records=[{"email": "ghost@example.invalid", "plan": "pro"}],
    )
"""


def run_with_openlineage(tmp_path: Path, dags: Path) -> list[dict]:
    events = tmp_path / "openlineage.jsonl"
    env = dict(os.environ)
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "userattrs-tests"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from tests.conftest import load_dag
        load_dag(Path({str(dags / "lineage_sync.py")!r}), "lineage_sync").test()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert events.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def test_events_of_a_real_run_carry_inputs_output_statistics_and_column_lineage(dag_harness, tmp_path, monkeypatch):
    warehouse = tmp_path / "w.db"
    with sqlite3.connect(warehouse) as conn:
        conn.execute("CREATE TABLE people (email TEXT, lifetime_value REAL, plan TEXT)")
        conn.execute("INSERT INTO people VALUES ('a@example.com', 10.5, 'pro'), ('b@example.invalid', 1, 'free')")
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse)}))
    (dag_harness.folder / "lineage_sync.py").write_text(DAG_FILE)
    events = run_with_openlineage(tmp_path, dag_harness.folder)

    def event(task: str, state: str) -> dict:
        found = [e for e in events if e["eventType"] == state and e["job"]["name"] == f"lineage_sync.{task}"]
        assert found, [(e["eventType"], e["job"]["name"]) for e in events]
        return found[-1]

    namespace = f"sqlite://{warehouse}"
    start, complete = event("push", "START"), event("push", "COMPLETE")
    for ev in (start, complete):
        assert [(i["namespace"], i["name"]) for i in ev["inputs"]] == [(namespace, "main.people")]
        (output,) = ev["outputs"]
        assert (output["namespace"], output["name"]) == ("userattrs://dx", "dx_default")
        assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["ltv", "plan"]
        fields = output["facets"]["columnLineage"]["fields"]
        assert set(fields) == {"ltv", "plan"}
        (ltv_source,) = fields["ltv"]["inputFields"]
        assert (ltv_source["namespace"], ltv_source["name"], ltv_source["field"]) == (
            namespace,
            "main.people",
            "lifetime_value",
        )
        assert fields["plan"]["inputFields"][0]["field"] == "plan"
        assert "SELECT p.email" in ev["job"]["facets"]["sql"]["query"]
    (output,) = complete["outputs"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 1  # the .invalid user is rejected by DX
    sync = complete["run"]["facets"]["userattrsSync"]
    assert (sync["total"], sync["succeeded"], sync["failed"], sync.get("error")) == (2, 1, 1, None)

    fail = event("rejected", "FAIL")
    sync = fail["run"]["facets"]["userattrsSync"]
    assert (sync["total"], sync["succeeded"], sync["failed"]) == (1, 0, 1)
    assert sync["error"] == "1 of 1 users failed"
    assert "outputStatistics" not in fail["outputs"][0].get("outputFacets", {})
    assert "sandbox-token" not in json.dumps(events)


def test_without_the_openlineage_provider_the_facets_are_none(monkeypatch):
    from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

    monkeypatch.setattr(lineage, "openlineage_available", lambda: False)
    op = UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[])
    assert op.get_openlineage_facets_on_start() is None
    assert op.get_openlineage_facets_on_complete(None) is None
    assert op.get_openlineage_facets_on_failure(None) is None


def test_the_provider_imports_without_openlineage_installed():
    # a fresh interpreter where every openlineage module is unimportable
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "openlineage":  # the OpenLineage client: nothing of it works
                    raise ImportError(name)
        sys.meta_path.insert(0, Block())
        from airflow_provider_userattrs import lineage
        from airflow_provider_userattrs.operators import UpdateUserAttributesOperator
        op = UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[])
        assert lineage.openlineage_available() is False
        assert op.get_openlineage_facets_on_start() is None
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("ok"), done.stderr[-3000:]
