"""Daily warehouse-to-CRM sync: a segment of users and their attributes, pushed to any of the four vendors.

The vendor connection and the segment are DAG params, so one DAG serves AltaTech, Fyno, DX and User.com.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES
from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

WAREHOUSE_CONN_ID = os.environ.get("USERATTRS_WAREHOUSE_CONN_ID", "userattrs_warehouse")
MAX_PARALLEL_CHUNKS = int(os.environ.get("USERATTRS_MAX_PARALLEL_CHUNKS", "4"))
"""Chunks of one run sending at once. A quota-bound vendor is saturated by a chunk or two: more only share the
same quota while holding worker slots (see the DAG's doc)."""
POOL = os.environ.get("USERATTRS_POOL", "default_pool")
"""A pool per vendor account (e.g. ``userattrs_dx``, slots = chunks allowed at once) bounds all DAGs together."""
VENDOR_CONNECTIONS = ["altatech_default", "fyno_default", "dx_default", "usercom_default"]
ALERT_CONN_ID = os.environ.get("USERATTRS_ALERT_CONN_ID")
"""Where a failed or degraded chunk sends its report (README "Alerts"): an SMTP connection (to the addresses of
``USERATTRS_ALERT_TO``) or, without ``USERATTRS_ALERT_TO``, a Slack incoming-webhook connection. Unset: no alert."""


def sync_alert():
    """The chunks' ``alert``: a notifier from the environment, or None. Builds it only (no I/O at parse time)."""
    if not ALERT_CONN_ID:
        return None
    if os.environ.get("USERATTRS_ALERT_TO"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=os.environ["USERATTRS_ALERT_TO"].split(","), smtp_conn_id=ALERT_CONN_ID)
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=ALERT_CONN_ID, text="")  # text: the alert fills it


with DAG(
    dag_id="userattrs_warehouse_sync",
    description="Sync user attributes from the warehouse to a vendor, in mapped chunks",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["userattrs", "reverse-etl", "example"],
    default_args={
        "owner": "data-platform",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "conn_id": Param(
            "dx_default",
            type="string",
            enum=VENDOR_CONNECTIONS,
            title="Vendor connection",
            description="Where the attributes go; the connection's type picks the vendor.",
        ),
        "segment": Param(
            "order_count > 0",
            type="string",
            minLength=1,
            title="Segment (SQL condition)",
            description="A WHERE condition on user_attributes, e.g. vip_level IN ('gold', 'platinum').",
        ),
        "chunk_size": Param(1000, type="integer", minimum=10, maximum=100000, title="Users per mapped task"),
        "max_failure_ratio": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            title="Tolerated share of rejected users",
            description="Rejected rows are reported either way; the run fails above this share.",
        ),
        "replay_from": Param(
            "",
            type="string",
            title="Replay failures from (optional)",
            description="A failure file of an earlier run: resend only its retryable failures instead of the "
            "segment. Set by the Sync report's Replay failures button; leave empty for a normal sync.",
        ),
    },
    doc_md=__doc__
    + """
**Flow**: `plan_chunks` reads the segment's key ranges from the warehouse (no rows in XCom), one
`push_chunk` per range streams its rows and sends them (each chunk retried on its own and resumed from
its checkpoint), `summarize` reads every chunk's report and fails the run when it is not clean.

**Quotas and parallel chunks**: real vendors are quota-bound (DX 1,000 requests a minute per account,
AltaTech plans down to 1,000 an hour). Declare the quota on the connection (`quota_requests`,
`quota_window_seconds`): every chunk then paces its share of it from the vendor's answers, whatever worker
it runs on, and a wait longer than `defer_after` (60 s) frees the worker (the task is deferred). One chunk
with 32 requests in flight sends about 300 requests/s at 100 ms latency, so one or two chunks already
saturate such a quota: more parallel chunks finish no sooner, they only hold more worker slots. Bound them
per run with `USERATTRS_MAX_PARALLEL_CHUNKS` (`max_active_tis_per_dagrun`, default 4) and across DAGs with
a pool per vendor account (`USERATTRS_POOL`, e.g. `airflow pools set userattrs_dx 2 "DX account"`).
`summarize` reports the share of the declared quota the whole run used.

**Alerts**: with `USERATTRS_ALERT_CONN_ID` (an SMTP connection and `USERATTRS_ALERT_TO`, or a Slack webhook
connection), a chunk that fails or succeeds degraded (any rejected user, a deferral) sends its report there:
counts, the top reasons with their users, the failure file and a link to its Sync report tab.

**Replay**: with the `replay_from` param (a failure file), `plan_chunks` plans one chunk that resends only the
file's retryable failures; the Sync report tab's *Replay failures* button starts such a run.
""",
) as dag:

    @task
    def plan_chunks(params=None) -> list[dict]:
        from airflow_provider_userattrs.demo.segments import plan_chunks as plan

        if params.get("replay_from"):  # one chunk that resends the file's retryable failures, not the segment
            print(f"replaying the retryable failures of {params['replay_from']}")
            return [{"sql": None}]
        chunks = plan(WAREHOUSE_CONN_ID, params["conn_id"], int(params["chunk_size"]), params["segment"])
        print(f"{len(chunks)} chunks of at most {params['chunk_size']} users")
        return chunks

    push = UpdateUserAttributesOperator.partial(
        task_id="push_chunk",
        conn_id="{{ params.conn_id }}",
        sql_conn_id=WAREHOUSE_CONN_ID,
        attributes=list(SYNC_ATTRIBUTES),
        max_failure_ratio=1.0,  # judged over the whole run by summarize, not per chunk
        max_active_tis_per_dagrun=MAX_PARALLEL_CHUNKS,
        pool=POOL,
        replay_from="{{ params.replay_from }}",  # empty: the chunk's sql; a failure file: a replay
        # every failed attribute, one row per try, beside the segment (README "Results table"; no values)
        results_table="userattrs_sync_results",
        alert=sync_alert(),  # failed or degraded chunks send their report ($USERATTRS_ALERT_CONN_ID; None: none)
    ).expand_kwargs(plan_chunks())

    @task(trigger_rule="all_done", retries=0)
    def summarize(params=None, ti=None) -> dict:
        from airflow_provider_userattrs.demo.summary import judge_run

        # The run's quota use comes with it: the chunks' reports say which quota their client paced to.
        reports = ti.xcom_pull(task_ids="push_chunk", key="report") or []
        return judge_run(reports, float(params["max_failure_ratio"]), print)

    push >> summarize()
