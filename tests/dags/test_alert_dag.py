"""The warehouse-sync example DAG with its alert on: the demo's dirty rows make chunks degraded, each sends its
report by e-mail through Airflow's SMTP notifier to a local SMTP server (tests/smtp_sink.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dag_file
from tests.dags.test_dags import DAGS, demo_env, sqlite_warehouse  # noqa: F401  (fixtures)
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration


def test_warehouse_sync_mails_the_report_of_each_degraded_chunk(demo_env, monkeypatch):  # noqa: F811
    sqlite_warehouse(demo_env, monkeypatch, users=300)
    with SmtpSink() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_USERATTRS_ALERTS", json.dumps(smtp.connection("pw-demo-alerts-4d1c")))
        monkeypatch.setenv("USERATTRS_ALERT_CONN_ID", "userattrs_alerts")
        monkeypatch.setenv("USERATTRS_ALERT_TO", "data@acme.test,oncall@acme.test")
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.acme.test")
        result = run_dag_file(
            DAGS / "userattrs_warehouse_sync.py",
            "userattrs_warehouse_sync",
            {"conn_id": "dx_default", "chunk_size": 100},
        )
        chunks = sorted(i for task, i in result.tasks if task == "push_chunk")
        reports = {i: result.xcom("push_chunk", "report", map_index=i) for i in chunks}
        degraded = sorted(i for i, r in reports.items() if r["degraded"])
        mails = [smtp.get(timeout=30) for _ in degraded]
        assert smtp.drain() == [], "a healthy chunk sends nothing"
    assert degraded, reports  # the demo warehouse's dirty rows (DX refuses some)
    assert all(r["failed"] for i, r in reports.items() if i in degraded)
    expected = []
    for i in degraded:
        failed, total = reports[i]["failed"], reports[i]["total"]
        expected.append(
            f"[Airflow] Sync degraded: userattrs_warehouse_sync / push_chunk[{i}] (dx): {failed:,} of {total:,} users "
            f"failed ({failed / total:.2%}, above degraded_failure_ratio 0.00%)"
        )
    assert sorted(mail.subject for mail in mails) == sorted(expected)
    for mail in mails:
        assert mail.rcpt_to == ["<data@acme.test>", "<oncall@acme.test>"]
        html = mail.part("text/html")
        assert "Top reasons (users per reason, from the failure file):" in html
        assert '<a href="https://airflow.acme.test/userattrs/report/userattrs_warehouse_sync/' in html
        assert "pw-demo-alerts-4d1c" not in mail.raw.decode() and "sandbox-token" not in html
