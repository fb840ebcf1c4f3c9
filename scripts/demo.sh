#!/usr/bin/env bash
# The main job: sets everything up on a fresh machine and runs the warehouse sync for real.
#   virtual environment + install, a project-local AIRFLOW_HOME with its metadata DB, the demo warehouse
#   (SQLite), the vendor sandbox in the background; then `airflow dags test userattrs_warehouse_sync` once per
#   vendor and `userattrs_mass_update` once, a summary, and everything it started is stopped.
# Options (environment): DEMO_USERS (default 5000), DEMO_VENDORS (default "altatech fyno dx usercom").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
bash scripts/bootstrap.sh

DEMO="$ROOT/.demo"
mkdir -p "$DEMO"
export AIRFLOW_HOME="$DEMO/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="[{\"name\": \"dags-folder\", \"classpath\": \"airflow.dag_processing.bundles.local.LocalDagBundle\", \"kwargs\": {\"path\": \"$ROOT/dags\", \"refresh_interval\": 0}}]"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
export USERATTRS_FAILURE_PATH="file://$DEMO/failures"
PY="$ROOT/.venv/bin/python"
AIRFLOW="$ROOT/.venv/bin/airflow"

echo "demo: Airflow metadata DB in $AIRFLOW_HOME"
"$AIRFLOW" db migrate >"$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log"; exit 1; }

echo "demo: building the warehouse ($DEMO/warehouse.db, ${DEMO_USERS:-5000} users, ~2% dirty rows)"
"$PY" -m airflow_provider_userattrs.demo.warehouse --target "$DEMO/warehouse.db" --users "${DEMO_USERS:-5000}" >"$DEMO/warehouse.json"

# User.com refuses custom attributes that do not exist in the app, and so does the sandbox: create the ones the
# demo DAGs send, the warehouse columns the sync pushes and the mass update's default attribute.
mapfile -t USERCOM_ATTRIBUTES < <("$PY" -c '
from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES
for name in (*SYNC_ATTRIBUTES, "churn_risk_flag"):  # churn_risk_flag: dags/userattrs_mass_update.py
    print("--usercom-attribute", name, sep="\n")
')
[ "${#USERCOM_ATTRIBUTES[@]}" -gt 0 ] || { echo "demo: could not list the warehouse attributes"; exit 1; }

rm -f "$DEMO/sandbox.port"
"$PY" -m airflow_provider_userattrs.sandbox --port 0 --port-file "$DEMO/sandbox.port" "${USERCOM_ATTRIBUTES[@]}" \
  >"$DEMO/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true; wait $SANDBOX_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$DEMO/sandbox.port" ] && break; sleep 0.1; done
[ -s "$DEMO/sandbox.port" ] || { echo "demo: the sandbox did not start"; cat "$DEMO/sandbox.log"; exit 1; }
SANDBOX="http://127.0.0.1:$(cat "$DEMO/sandbox.port")"
echo "demo: vendor sandbox at $SANDBOX"

for vendor in altatech fyno dx usercom; do
  extra='{}'
  [ "$vendor" = fyno ] && extra='{"workspace_id": "sandboxwsid"}'
  export "AIRFLOW_CONN_$(echo "$vendor" | tr a-z A-Z)_DEFAULT={\"conn_type\": \"$vendor\", \"host\": \"$SANDBOX\", \"password\": \"sandbox-token\", \"extra\": $extra}"
done
export AIRFLOW_CONN_USERATTRS_WAREHOUSE="{\"conn_type\": \"sqlite\", \"host\": \"$DEMO/warehouse.db\"}"

status=0
# The DAGs into the metadata DB, as the DAG processor would: userattrs_after_delivery is scheduled on the vendor
# datasets the syncs emit on, so Airflow knows those assets (active) before the first event; and the consumer of
# the asset pair below must be known to be queued. Without it, Airflow warns "Emitting event for inactive
# AssetModel" for each event of each chunk.
"$AIRFLOW" dags reserialize >"$DEMO/reserialize.log" 2>&1 || { echo "demo: reserialize failed; log: $DEMO/reserialize.log"; status=1; }
for vendor in ${DEMO_VENDORS:-altatech fyno dx usercom}; do
  echo "demo: airflow dags test userattrs_warehouse_sync -> ${vendor}_default"
  if ! "$AIRFLOW" dags test userattrs_warehouse_sync -c "{\"conn_id\": \"${vendor}_default\"}" >"$DEMO/sync-$vendor.log" 2>&1; then
    echo "demo: the $vendor sync failed; log: $DEMO/sync-$vendor.log"; status=1
  fi
  "$PY" -m airflow_provider_userattrs.demo.summary userattrs_warehouse_sync | tail -n +2
done
echo "demo: airflow dags test userattrs_mass_update -> usercom_default (churn_risk = 'high')"
"$AIRFLOW" dags test userattrs_mass_update >"$DEMO/mass-update.log" 2>&1 || { echo "demo: mass update failed; log: $DEMO/mass-update.log"; status=1; }
"$PY" -m airflow_provider_userattrs.demo.summary userattrs_mass_update | tail -n +2

echo "demo: data-aware sync: userattrs_build_attributes rebuilds user_attributes; its asset event queues userattrs_on_attributes_updated"
# The consumer must be unpaused for Airflow's asset manager to queue it (reserialized above).
"$AIRFLOW" dags unpause userattrs_on_attributes_updated >/dev/null 2>&1 || true
"$AIRFLOW" dags test userattrs_build_attributes >"$DEMO/build-attributes.log" 2>&1 || { echo "demo: build failed; log: $DEMO/build-attributes.log"; status=1; }
# What the scheduler would read to start the consumer: the queue row Airflow wrote for it, and the event behind it.
if "$PY" - <<'PYEOF'
import sys
from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
from airflow.utils.session import create_session
with create_session() as session:
    queued = session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == "userattrs_on_attributes_updated").all()
    for row in queued:
        asset = session.get(AssetModel, row.asset_id)
        event = session.query(AssetEvent).filter(AssetEvent.asset_id == row.asset_id).order_by(AssetEvent.id.desc()).first()
        print(f"  queued userattrs_on_attributes_updated: asset {asset.uri} updated by {event.source_dag_id}/{event.source_run_id} {event.extra}")
    sys.exit(0 if queued else 1)
PYEOF
then
  echo "demo: airflow dags test userattrs_on_attributes_updated (the queued run, incremental sync -> dx_default)"
  "$AIRFLOW" dags test userattrs_on_attributes_updated >"$DEMO/on-attributes-updated.log" 2>&1 || { echo "demo: the asset-triggered sync failed; log: $DEMO/on-attributes-updated.log"; status=1; }
  "$PY" -m airflow_provider_userattrs.demo.summary userattrs_on_attributes_updated | tail -n +2
else
  echo "demo: the build's asset event queued no run of userattrs_on_attributes_updated"; status=1
fi

echo
echo "demo: the sandbox received:"
"$PY" - "$SANDBOX" <<'PYEOF'
import sys
from airflow_provider_userattrs.sandbox import SandboxClient
stats = SandboxClient(sys.argv[1]).stats()
print("  requests by vendor:", stats["requests"]["by_vendor"], " by status:", stats["requests"]["by_status"])
print("  users stored per vendor:", stats["users"])
PYEOF
# Every asset event above goes to an asset a DAG is scheduled on (userattrs_after_delivery): Airflow's warning
# about an inactive asset means one of them was not (a vendor or connection the DAGs do not know).
if inactive="$(grep -l "Emitting event for inactive AssetModel" "$DEMO"/*.log)"; then
  echo "demo: Airflow recorded asset events on assets no DAG uses, see:" $inactive; status=1
fi
echo "demo: logs and failure files under $DEMO"
exit $status
