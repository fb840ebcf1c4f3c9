"""Flag a segment: set one attribute to one value for every user in it (e.g. churn-risk users).

User.com receives one mass-update call per 1,000 ids; Fyno batches; AltaTech and DX one call per user.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_userattrs.operators import MassUpdateOperator

WAREHOUSE_CONN_ID = os.environ.get("USERATTRS_WAREHOUSE_CONN_ID", "userattrs_warehouse")

with DAG(
    dag_id="userattrs_mass_update",
    description="Set one attribute for every user of a warehouse segment",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["userattrs", "reverse-etl", "example"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "conn_id": Param(
            "usercom_default",
            type="string",
            enum=["altatech_default", "fyno_default", "dx_default", "usercom_default"],
            title="Vendor connection",
        ),
        "segment": Param("churn_risk = 'high'", type="string", minLength=1, title="Segment (SQL condition)"),
        "attribute": Param("churn_risk_flag", type="string", minLength=1, maxLength=255, title="Attribute"),
        "value": Param("high", type=["string", "number", "boolean", "null"], title="Value"),
        "max_failure_ratio": Param(0.05, type="number", minimum=0, maximum=1, title="Tolerated share of rejections"),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:

    @task
    def segment_sql(params=None) -> str:
        from airflow_provider_userattrs.demo.segments import segment_ids_sql

        return segment_ids_sql(WAREHOUSE_CONN_ID, params["conn_id"], params["segment"])

    MassUpdateOperator(
        task_id="flag_segment",
        conn_id="{{ params.conn_id }}",
        attribute="{{ params.attribute }}",
        value="{{ params.value }}",
        sql=segment_sql(),
        sql_conn_id=WAREHOUSE_CONN_ID,
        max_failure_ratio="{{ params.max_failure_ratio }}",
    )
