"""Set an attribute for a few users by hand, from the Airflow UI's trigger form.

The form validates the input (JSON Schema params): a bad id list or attribute name is refused by the
form, before any run starts.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_userattrs.operators import MassUpdateOperator

with DAG(
    dag_id="userattrs_manual_update",
    description="Manually set one attribute for a list of users",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["userattrs", "manual", "example"],
    default_args={"owner": "data-platform", "retries": 1},
    params={
        "conn_id": Param(
            "dx_default",
            type="string",
            enum=["altatech_default", "fyno_default", "dx_default", "usercom_default"],
            title="Vendor connection",
            description="The vendor to update (the connection's type picks the API).",
            values_display={
                "altatech_default": "AltaTech",
                "fyno_default": "Fyno",
                "dx_default": "DX",
                "usercom_default": "User.com",
            },
        ),
        "user_ids": Param(
            ["ann@example.com"],
            type="array",
            items={"type": "string", "minLength": 1, "maxLength": 320},
            minItems=1,
            maxItems=10000,
            uniqueItems=True,
            title="User ids",
            description="One per line: AltaTech user_id, Fyno distinct_id, DX email or User.com numeric id.",
        ),
        "attribute": Param(
            "plan",
            type="string",
            minLength=1,
            maxLength=255,
            pattern=r"^\S(.*\S)?$",
            title="Attribute name",
            description="1 to 255 characters, no leading or trailing spaces.",
        ),
        "value": Param(
            "pro",
            type=["string", "null"],
            maxLength=255,
            title="Value",
            description="Text value; leave empty (null) to remove it where the vendor supports removal (DX, Fyno).",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Validate and report; send nothing."),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    MassUpdateOperator(
        task_id="update_users",
        conn_id="{{ params.conn_id }}",
        attribute="{{ params.attribute }}",
        value="{{ params.value }}",
        user_ids="{{ params.user_ids }}",
        dry_run="{{ params.dry_run }}",
    )
