"""Data-aware sync: the warehouse rebuilds the attribute view, and that update, not a clock, starts the sync.

Two DAGs joined by an asset, as a transform (dbt, SQL) and a reverse-ETL sync are in a real pipeline:

- ``userattrs_build_attributes`` rebuilds the demo's ``user_attributes`` view; its task's outlet is the view's
  asset, so each successful rebuild records an asset event (with the number of users in the view).
- ``userattrs_on_attributes_updated`` is scheduled on that asset: Airflow starts it after each rebuild. It runs
  the incremental sync, which sends only what changed since the last delivery, and emits its own asset event
  on ``userattrs://<vendor>/<conn_id>`` for whatever comes next.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES
from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

WAREHOUSE_CONN_ID = os.environ.get("USERATTRS_WAREHOUSE_CONN_ID", "userattrs_warehouse")
USER_ATTRIBUTES = Asset(
    name="userattrs_demo.user_attributes",
    uri=f"warehouse://{WAREHOUSE_CONN_ID}/user_attributes",
    group="warehouse",
)
"""The attribute view in the warehouse, named by the Airflow connection it lives behind (no I/O at parse time)."""

DEFAULT_ARGS = {"owner": "data-platform", "retries": 2, "retry_delay": timedelta(seconds=30)}

with DAG(
    dag_id="userattrs_build_attributes",
    description="Rebuild the user_attributes view in the warehouse (the transform before the sync)",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["userattrs", "assets", "example"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__
    + """
**This DAG**: `rebuild_view` drops and recreates `user_attributes` from `users` and `orders` (what a dbt model
would do) and records an asset event on `userattrs_demo.user_attributes` with the view's size.
""",
) as build_dag:

    @task(outlets=[USER_ATTRIBUTES])
    def rebuild_view(*, outlet_events=None) -> dict[str, int]:
        """Recreate the view on the warehouse connection, in the dialect of its database."""
        from airflow_provider_userattrs.compat import BaseHook  # airflow.sdk's from Airflow 3.1
        from airflow_provider_userattrs.demo import warehouse

        conn_type = BaseHook.get_connection(WAREHOUSE_CONN_ID).conn_type
        hook = BaseHook.get_connection(WAREHOUSE_CONN_ID).get_hook()
        if conn_type in ("postgres", "postgresql"):
            statements = ["SET search_path TO userattrs_demo", "DROP VIEW IF EXISTS user_attributes"]
            statements.append(warehouse.POSTGRES_VIEW)
            table = "userattrs_demo.user_attributes"
        else:
            statements = ["DROP VIEW IF EXISTS user_attributes", warehouse.SQLITE_VIEW]
            table = "user_attributes"
        hook.run(statements)
        users = int(hook.get_first(f"SELECT COUNT(*) FROM {table}")[0])
        outlet_events[USER_ATTRIBUTES].extra = {"users": users}
        print(f"rebuilt {table}: {users} users")
        return {"users": users}

    rebuild_view()


with DAG(
    dag_id="userattrs_on_attributes_updated",
    description="Incremental sync to a vendor, started by each rebuild of the user_attributes view",
    schedule=[USER_ATTRIBUTES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["userattrs", "assets", "reverse-etl", "example"],
    default_args=DEFAULT_ARGS,
    params={
        "conn_id": Param(
            "dx_default",
            type="string",
            enum=["altatech_default", "fyno_default", "dx_default", "usercom_default"],
            title="Vendor connection",
            description="Where the changed attributes go; the connection's type picks the vendor.",
        ),
        "segment": Param("order_count > 0", type="string", minLength=1, title="Segment (SQL condition)"),
        "chunk_size": Param(100000, type="integer", minimum=10, maximum=1000000, title="Users per mapped task"),
    },
    doc_md=__doc__
    + """
**This DAG**: started by the asset event of `userattrs_build_attributes`. `plan_chunks` splits the segment into
key ranges, and one incremental `UpdateUserAttributesOperator` per range sends only the attributes that changed
since the last delivery (state in the warehouse, table `userattrs_sync_state`).
""",
) as sync_dag:

    @task
    def plan_chunks(params=None, triggering_asset_events=None) -> list[dict]:
        from airflow_provider_userattrs.demo.segments import plan_chunks as plan

        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                print(f"triggered by {asset}: {event.extra} from {event.source_dag_id}/{event.source_run_id}")
        return plan(WAREHOUSE_CONN_ID, params["conn_id"], int(params["chunk_size"]), params["segment"])

    UpdateUserAttributesOperator.partial(
        task_id="push_changes",
        conn_id="{{ params.conn_id }}",
        sql_conn_id=WAREHOUSE_CONN_ID,
        attributes=list(SYNC_ATTRIBUTES),
        incremental=True,
        state_key="userattrs_on_attributes_updated.{{ params.conn_id }}",
        max_failure_ratio=0.05,
    ).expand_kwargs(plan_chunks())
