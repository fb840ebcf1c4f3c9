"""After a delivery: what comes once a vendor has the attributes, started by the sync's asset event, not a clock.

Every sync of the example DAGs (``userattrs_warehouse_sync``, ``userattrs_mass_update``,
``userattrs_on_attributes_updated``, ``userattrs_manual_update``) records an asset event on the vendor dataset
``userattrs://<vendor>/<conn_id>`` when it succeeds, with the counts in its extra. This DAG is scheduled on the
datasets of the four default connections (any of them): a campaign to start, a check of the delivered share, a
message to the team would go here.

Being scheduled on them is also what makes Airflow know these assets (keep them *active*): the syncs name their
dataset only at run time (the connection is a param), through the provider's asset alias, and an event on an asset
no DAG uses is recorded all the same, with a warning from Airflow for each one.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, task

from airflow_provider_userattrs.assets import asset_uri

VENDOR_CONNECTIONS = {
    "altatech_default": "altatech",
    "fyno_default": "fyno",
    "dx_default": "dx",
    "usercom_default": "usercom",
}
"""The connections the example DAGs sync to, and the vendor (connection type) of each."""
VENDOR_DATASETS = [Asset(uri=asset_uri(vendor, conn_id)) for conn_id, vendor in VENDOR_CONNECTIONS.items()]
"""``userattrs://<vendor>/<conn_id>``: the assets the syncs emit on (named by their URI, as the provider names them)."""

with DAG(
    dag_id="userattrs_after_delivery",
    description="Runs after each delivery to a vendor (the vendor datasets' asset events)",
    schedule=AssetAny(*VENDOR_DATASETS),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["userattrs", "assets", "example"],
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
) as dag:

    @task
    def report_deliveries(triggering_asset_events=None) -> list[dict]:
        """One line per delivery that started the run: the vendor dataset, the counts and the run behind them."""
        deliveries = []
        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                extra = dict(event.extra or {})
                delivery = {key: extra.get(key) for key in ("vendor", "conn_id", "total", "succeeded", "failed")}
                delivery.update(uri=getattr(asset, "uri", str(asset)), source_dag_id=event.source_dag_id)
                delivery["source_run_id"] = event.source_run_id
                print(
                    f"{delivery['uri']}: {delivery['succeeded']} of {delivery['total']} users delivered "
                    f"({delivery['failed']} failed) by {event.source_dag_id}/{event.source_run_id}"
                )
                deliveries.append(delivery)
        return deliveries

    report_deliveries()
