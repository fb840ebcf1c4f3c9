"""Alerts with the report, sent for real: Airflow's SMTP notifier to a local SMTP server, and the Slack provider's
incoming-webhook notifier to a local webhook, from a real ``dag.test()``.

The DX sandbox answers with the connection's token in one rejection and in one refusal (the masker must hide
it); the message is read back from the server and checked: counts, the top reasons with their users (as the UI
groups them), the failure file, the link to the task's "Sync report" page, and no secret (neither the vendor's
token nor the SMTP password or the webhook token, in the message or, for Slack, in the run's whole log). A healthy
sync sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from airflow_provider_userattrs.sandbox import SandboxServer
from airflow_provider_userattrs.sync.storage import read_lines
from airflow_provider_userattrs.ui.failures import summarize
from tests.smtp_sink import Received, SmtpSink
from tests.webhook_sink import Posted, WebhookSink
from tests.worker_process import run_dag_in_process, write_dag

pytestmark = pytest.mark.integration

TOKEN = "dx-alert-token-7c1e5a9b3d2f4e60"
SMTP_PASSWORD = "smtp-alert-password-5b8d2e7f"
BASE_URL = "http://airflow.test:8080"
HEADER = """
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow_provider_userattrs.alerts import SyncAlert

def mail():
    return SmtpNotifier(to="data@acme.test", smtp_conn_id="alert_smtp")
"""
GHOSTS = [f"ghost{i}@example.com" for i in range(3)]


@pytest.fixture
def smtp(monkeypatch) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_ALERT_SMTP", json.dumps(sink.connection(SMTP_PASSWORD)))
        yield sink


@pytest.fixture
def vendor(monkeypatch) -> Iterator[SandboxServer]:
    with SandboxServer(port=0, tokens=[TOKEN]) as server:
        conn = {"conn_type": "dx", "host": server.url, "password": TOKEN, "extra": {"max_attempts": 1}}
        monkeypatch.setenv("AIRFLOW_CONN_ALERT_DX", json.dumps(conn))
        server.register_unknown_users("dx", GHOSTS)
        yield server


def _echo(status: int, body: dict[str, object]) -> dict[str, object]:
    return {"status": status, "body": json.dumps(body), "vendor": "dx"}


def assert_no_secret(mail: Received) -> None:
    raw = mail.raw.decode("utf-8", "replace")
    for text in (raw, mail.part("text/html"), mail.subject):
        assert TOKEN not in text and SMTP_PASSWORD not in text


def report_link(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    return f"{BASE_URL}/userattrs/report/{dag_id}/{quote(run_id, safe='')}/{task_id}?map_index={map_index}"


def test_a_degraded_sync_sends_its_report_by_mail_and_a_healthy_one_sends_nothing(
    dag_harness, smtp, vendor, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    # concurrency 1: the first record's request is the one the vendor answers with the token
    vendor.script([_echo(422, {"ok": False, "error": f"Invalid token {TOKEN}"})])
    good = [{"email": f"p{i}@example.com", "plan": "pro"} for i in range(20)]
    records = good + [{"email": g, "plan": "pro", "tier": "gold"} for g in GHOSTS] + [{"email": "not-an-email"}]
    result = dag_harness.run(
        "alerts_degraded",
        f"""
        push = UpdateUserAttributesOperator(
            task_id="push", conn_id="alert_dx", user_id_field="email", max_failure_ratio=0.5,
            hook_params={{"concurrency": 1}}, records={records!r}, alert=mail(),
        )
        healthy = UpdateUserAttributesOperator(
            task_id="healthy", conn_id="alert_dx", user_id_field="email", records={good[:5]!r}, alert=mail(),
        )
        chunks = UpdateUserAttributesOperator.partial(
            task_id="chunk", conn_id="alert_dx", user_id_field="email", max_failure_ratio=0.5, alert=mail(),
        ).expand(records=[{good[5:8]!r}, {[*good[8:10], {"email": GHOSTS[0], "plan": "x"}]!r}])
        push >> healthy >> chunks
        """,
        header=HEADER,
    )
    assert result.state == "success", result.tasks
    report = result.xcom("push", "report")
    assert (report["total"], report["succeeded"], report["failed"]) == (24, 19, 5)
    assert [d["rule"] for d in report["degraded"]] == ["failed_share"]
    assert result.xcom("healthy", "report")["degraded"] == []

    first = smtp.get(timeout=30)
    second = smtp.get(timeout=30)
    assert smtp.drain() == [], "the healthy task and the healthy chunk send nothing"
    mail = next(m for m in (first, second) if "alerts_degraded / push" in m.subject)
    chunk = next(m for m in (first, second) if "alerts_degraded / chunk[1]" in m.subject)
    assert mail.subject.startswith("[Airflow] Sync degraded: alerts_degraded / push (dx): 5 of 24 users failed")
    assert mail.rcpt_to == ["<data@acme.test>"]
    html = mail.part("text/html")
    assert "24 read · 19 delivered · 5 failed (20.83%, 0 of them transiently)" in html
    assert "Why it is degraded:" in html and "above degraded_failure_ratio 0.00%" in html
    # the top reasons, users per reason, as the UI groups them from the failure file
    groups = summarize(read_lines(report["failure_file"])).groups
    assert [g.users for g in groups] == sorted((g.users for g in groups), reverse=True)
    assert groups[0].users == 3 and "user_not_found" in groups[0].reason
    for group in groups:
        assert f"{group.users} user{'s' if group.users > 1 else ''} (rejected): {group.reason}" in html
    assert "3 users (rejected): DX rejected the request (HTTP 422): user_not_found" in html
    assert "Invalid token ***" in html, "the echoed token is masked"
    assert f"Failure file: <code>{report['failure_file']}</code>" in html
    link = report_link("alerts_degraded", result.run_id, "push")
    assert f'<a href="{link}">Sync report</a>' in html
    assert_no_secret(mail)
    assert smtp.credentials and SMTP_PASSWORD in smtp.credentials[0], "the notifier logged in with the connection"

    assert chunk.subject.startswith("[Airflow] Sync degraded: alerts_degraded / chunk[1] (dx): 1 of 3 users failed")
    chunk_html = chunk.part("text/html")
    assert "1 user (rejected): DX rejected the request (HTTP 422): user_not_found" in chunk_html
    assert report_link("alerts_degraded", result.run_id, "chunk", 1) in chunk_html
    assert_no_secret(chunk)


def test_a_failed_sync_sends_the_error_without_the_token_and_says_how_to_get_a_full_link(
    dag_harness, smtp, vendor, monkeypatch
):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    vendor.script([_echo(401, {"detail": f"Invalid token {TOKEN}"})])
    result = dag_harness.run(
        "alerts_failed",
        """
        UpdateUserAttributesOperator(
            task_id="push", conn_id="alert_dx", user_id_field="email",
            records=[{"email": "ann@example.com", "plan": "gold"}],
            on_failure_callback=SyncAlert(mail()),
        )
        """,
        header=HEADER,
    )
    assert result.state == "failed" and result.task_state("push") == "failed"
    mail = smtp.get(timeout=30)
    assert smtp.drain() == []
    assert mail.subject.startswith("[Airflow] Sync failed: alerts_failed / push (dx): ")
    html = mail.part("text/html")
    assert "Why it failed:" in html and "***" in html
    assert "The task failed before" not in html, "the report was pushed before the task failed"
    path = f"/userattrs/report/alerts_failed/{quote(result.run_id, safe='')}/push?map_index=-1"
    assert f"Sync report: <code>{path}</code> (set [api] base_url (AIRFLOW__API__BASE_URL) for a full link)" in html
    assert_no_secret(mail)


# ------------------------------------------------------------------------------------------------------- Slack

WEBHOOK_TOKEN = "T0ALERTS/B0ALERTS/slack-webhook-secret-3f9a1c7e"
SLACK_HEADER = """
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow_provider_userattrs.alerts import SyncAlert

def slack():
    return SlackWebhookNotifier(slack_webhook_conn_id="alert_slack", text="")  # text: SyncAlert's
"""
SLACK_NOTIFIER = "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier"


@pytest.fixture
def webhook(monkeypatch) -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_ALERT_SLACK", json.dumps(sink.connection(WEBHOOK_TOKEN)))
        yield sink


def slack_escaped(text: str) -> str:
    """``text`` as Slack's markup of the alert shows it: ``&``, ``<``, ``>`` escaped, a masked secret as code."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("***", "`***`")


def assert_no_slack_secret(post: Posted, output: str) -> None:
    # Airflow 3.0's dag.test() prints its supervisor's debug lines, among them each secret a task asks it to mask
    # (MaskSecret(value=...)): Airflow's own record of the masking, left out; every other line is checked.
    log = "\n".join(line for line in output.splitlines() if "MaskSecret(" not in line)
    for text in (post.raw.decode("utf-8", "replace"), post.text, log):
        assert TOKEN not in text and WEBHOOK_TOKEN not in text
    assert WEBHOOK_TOKEN.split("/")[-1] not in log, "not even the token's last part"


def test_a_degraded_sync_posts_its_report_to_a_slack_webhook_without_any_secret(
    dag_harness, webhook, vendor, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    # The run's log at Airflow's default level (INFO). At DEBUG, `airflow dags test` also prints what Airflow's
    # supervisor is asked to mask and the Slack SDK's request URL (the webhook token in it), unmasked on its
    # console: a deployment's task logs pass the masker; dag.test()'s console does not.
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    vendor.script([_echo(422, {"ok": False, "error": f"Invalid token {TOKEN}"})])
    good = [{"email": f"s{i}@example.com", "plan": "pro"} for i in range(20)]
    records = good + [{"email": g, "plan": "pro", "tier": "gold"} for g in GHOSTS] + [{"email": "not-an-email"}]
    body = f"""
    push = UpdateUserAttributesOperator(
        task_id="push", conn_id="alert_dx", user_id_field="email", max_failure_ratio=0.5,
        hook_params={{"concurrency": 1}}, records={records!r}, alert=slack(),
    )
    healthy = UpdateUserAttributesOperator(
        task_id="healthy", conn_id="alert_dx", user_id_field="email", records={good[:5]!r}, alert=slack(),
    )
    push >> healthy
    """
    path = write_dag(dag_harness.folder, "alerts_slack", body, SLACK_HEADER)
    result, output = run_dag_in_process(path, "alerts_slack")
    assert result.state == "success", result.tasks
    report = result.xcom("push", "report")
    assert (report["total"], report["succeeded"], report["failed"]) == (24, 19, 5)

    post = webhook.get(timeout=30)
    assert webhook.drain() == [], "the healthy task sends nothing"
    assert post.path == f"/services/{WEBHOOK_TOKEN}", "posted to the connection's webhook"
    assert post.headers["Content-Type"].startswith("application/json")
    assert set(post.body) == {"text"}, "Slack's markup in text, nothing else set"
    lines = post.text.splitlines()
    assert lines[0] == "*Sync degraded: alerts_slack / push*"
    assert lines[1].startswith(f"Run {result.run_id}, try 1 · dx via alert_dx")
    assert "Users: 24 read · 19 delivered · 5 failed (20.83%, 0 of them transiently)" in lines
    assert "*Why it is degraded:*" in lines
    assert any(line.startswith("• 5 of 24 users failed (20.83%") for line in lines)
    # the top reasons, users per reason, as the UI groups them from the failure file, most users first
    groups = summarize(read_lines(report["failure_file"])).groups
    assert "*Top reasons (users per reason, from the failure file):*" in lines
    shown = [line for line in lines if line.startswith("• ") and "(rejected)" in line]
    assert len(shown) == len(groups) and groups[0].users == 3
    for line, group in zip(shown, groups, strict=True):
        unit = "users" if group.users > 1 else "user"
        assert line.startswith(f"• {group.users} {unit} (rejected): {slack_escaped(group.reason)}"), line
    assert shown[0].startswith("• 3 users (rejected): DX rejected the request (HTTP 422): user_not_found")
    assert "Invalid token `***`" in post.text, "the echoed token is masked, the mask shown as code (no bold)"
    assert f"Failure file: `{report['failure_file']}`" in lines
    assert lines[-1] == f"<{report_link('alerts_slack', result.run_id, 'push')}|Sync report>"
    assert "userattrs alert sent (degraded)" in output and "Asset event on userattrs://dx/alert_dx" in output
    assert_no_slack_secret(post, output)


def test_a_failed_sync_posts_to_slack_through_a_notifier_path_with_only_its_connection(
    dag_harness, webhook, vendor, monkeypatch
):
    # a notifier given by path, as a deadline alert's AsyncCallback kwargs carry it: Slack's requires text
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    vendor.script([_echo(401, {"detail": f"Invalid token {TOKEN}"})])
    body = f"""
    UpdateUserAttributesOperator(
        task_id="push", conn_id="alert_dx", user_id_field="email",
        records=[{{"email": "ann@example.com", "plan": "gold"}}],
        on_failure_callback=SyncAlert({SLACK_NOTIFIER!r}, notifier_kwargs={{"slack_webhook_conn_id": "alert_slack"}}),
    )
    """
    path = write_dag(dag_harness.folder, "alerts_slack_failed", body, SLACK_HEADER)
    result, output = run_dag_in_process(path, "alerts_slack_failed")
    assert result.state == "failed" and result.task_state("push") == "failed"
    post = webhook.get(timeout=30)
    assert webhook.drain() == []
    lines = post.text.splitlines()
    assert lines[0] == "*Sync failed: alerts_slack_failed / push*"
    assert "*Why it failed:*" in lines and "Invalid token `***`" in post.text
    page = f"/userattrs/report/alerts_slack_failed/{quote(result.run_id, safe='')}/push?map_index=-1"
    assert lines[-1] == f"Sync report: `{page}` (set [api] base_url (AIRFLOW__API__BASE_URL) for a full link)"
    assert_no_slack_secret(post, output)
