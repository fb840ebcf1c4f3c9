"""The alert's message and its notifier plumbing, without a DAG run (tests/operators/test_alerts.py sends for real);
and the degraded rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

from airflow_provider_userattrs.alerts import (
    ALERT_CONTEXT_KEY,
    BASE_URL_HINT,
    Reason,
    Reasons,
    SyncAlert,
    TaskRef,
    add_alert_callbacks,
    compose,
)
from airflow_provider_userattrs.compat import ASYNC_NOTIFIERS, BaseNotifier
from airflow_provider_userattrs.degraded import DegradedRules, degraded_messages, degraded_reasons

TASK = TaskRef("crm_sync", "scheduled__2026-12-06T02:15:00+00:00", "push_chunk", 2, 1)
REPORT: dict[str, Any] = {
    "vendor": "dx",
    "conn_id": "dx_default",
    "total": 4121,
    "succeeded": 4096,
    "failed": 25,
    "retryable_users": 0,
    "failures": [],
    "failures_truncated": True,
    "failure_file": "s3://bucket/userattrs/crm_sync/run/push_chunk/map-2/failures.jsonl",
    "requests_sent": 4121,
    "deferrals": 0,
    "throttled_requests": 0,
    "wall_seconds": 4.2,
    "duration_seconds": 4.2,
    "degraded": [{"rule": "failed_share", "message": "25 of 4,121 users failed (0.61%, above ...)"}],
}
REASONS = Reasons(
    [
        Reason("DX rejected the request (HTTP 422): user_not_found", 12, 96, False, ["vip_level", "ltv"]),
        Reason("last_purchase_date '<value>' is not a date", 8, 8, False, ["last_purchase_date"]),
        Reason("DX answered HTTP 503", 5, 5, True, ["plan"]),
    ],
    "the failure file",
)


def test_the_plain_text_reads_well() -> None:
    message = compose(REPORT, TASK, kind="degraded", root="https://airflow.acme.com/", reasons=REASONS, top_reasons=2)
    assert message.subject == (
        "[Airflow] Sync degraded: crm_sync / push_chunk[2] (dx): 25 of 4,121 users failed (0.61%, above ...)"
    )
    assert message.text == (
        "Sync degraded: crm_sync / push_chunk[2]\n"
        "Run scheduled__2026-12-06T02:15:00+00:00, try 1 · dx via dx_default\n"
        "\n"
        "Users: 4,121 read · 4,096 delivered · 25 failed (0.61%, 0 of them transiently)\n"
        "Requests: 4,121 · took 4.2 s\n"
        "\n"
        "Why it is degraded:\n"
        "  - 25 of 4,121 users failed (0.61%, above ...)\n"
        "\n"
        "Top reasons (users per reason, from the failure file):\n"
        "  12 users (rejected): DX rejected the request (HTTP 422): user_not_found  [vip_level, ltv]"
        " (96 attribute values)\n"
        "  8 users (rejected): last_purchase_date '<value>' is not a date  [last_purchase_date]\n"
        "  ... and 1 more reasons: see the sync report\n"
        "\n"
        "Failure file: s3://bucket/userattrs/crm_sync/run/push_chunk/map-2/failures.jsonl\n"
        "Sync report: https://airflow.acme.com/userattrs/report/crm_sync/"
        "scheduled__2026-12-06T02%3A15%3A00%2B00%3A00/push_chunk?map_index=2"
    )
    assert str(message) == message.text


def test_without_base_url_the_link_is_a_path_and_the_message_says_what_to_set() -> None:
    message = compose(REPORT, TASK, kind="degraded", root="", reasons=REASONS)
    path = "/userattrs/report/crm_sync/scheduled__2026-12-06T02%3A15%3A00%2B00%3A00/push_chunk?map_index=2"
    assert f"Sync report: {path} ({BASE_URL_HINT})" in message.text
    assert message.report_url == path
    assert "<a href" not in message.html and f"<code>{path}</code>" in message.html


def test_html_and_slack_escape_the_vendors_words() -> None:
    reasons = Reasons([Reason("user '<script>alert(1)</script>' & co", 1, 1, False, [])], "the report")
    message = compose(REPORT, TASK, kind="failed", error="boom <b>", root="https://a.test", reasons=reasons)
    assert (
        "<script>" not in message.html and "&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27; &amp; co" in message.html
    )
    assert "<script>" not in message.slack and "'&lt;script&gt;alert(1)&lt;/script&gt;' &amp; co" in message.slack
    assert message.slack.startswith("*Sync failed: crm_sync / push_chunk[2]*")
    assert "<https://a.test/userattrs/report/crm_sync/" in message.slack and "|Sync report>" in message.slack
    assert "Why it failed:" in message.text and "boom <b>" in message.text


def test_slack_shows_a_masked_secret_as_code_not_as_bold_markers(monkeypatch) -> None:
    import airflow_provider_userattrs.alerts as alerts

    monkeypatch.setattr(alerts, "redact", lambda text: text.replace("tok-123", "***"))
    reasons = Reasons([Reason("DX refused the token (HTTP 401): Invalid token tok-123", 1, 1, False, [])], "x")
    report = dict(REPORT, failure_file="s3://bucket/tok-123/failures.jsonl")
    message = compose(report, TASK, kind="failed", error="Invalid token tok-123", root="", reasons=reasons)
    assert "• 1 user (rejected): DX refused the token (HTTP 401): Invalid token `***`" in message.slack
    assert "• Invalid token `***`" in message.slack
    assert "Failure file: `s3://bucket/***/failures.jsonl`" in message.slack, "inside code already: as is"
    assert "tok-123" not in message.slack and "Invalid token ***" in message.text, "the other forms unchanged"


def test_a_task_that_failed_before_its_report_still_says_why() -> None:
    message = compose(None, TASK, kind="failed", error="AirflowFailException: bad extra", root="")
    assert message.subject == "[Airflow] Sync failed: crm_sync / push_chunk[2] (?): AirflowFailException: bad extra"
    assert "The task failed before it could report" in message.text
    assert "  - AirflowFailException: bad extra" in message.text


def test_reasons_fall_back_to_the_reports_sample_when_the_file_cannot_be_read() -> None:
    report = dict(REPORT, failure_file="file:///nonexistent/failures.jsonl", failures_truncated=False)
    report["failures"] = [
        {"user_id": f"u{i}@x.com", "attribute": "plan", "reason": "DX rejected: user_not_found", "retryable": False}
        for i in range(3)
    ]
    message = compose(report, TASK, kind="degraded", root="")
    assert "Top reasons (users per reason, from the report):" in message.text
    assert "  3 users (rejected): DX rejected: user_not_found  [plan]\n" in message.text


# ------------------------------------------------------------------------------------------------ the notifier


class Recorder(BaseNotifier):  # type: ignore[misc]
    """A notifier that keeps what it would send; ``text`` has a default, as Slack's notifiers do."""

    sent: ClassVar[list[dict[str, Any]]] = []
    template_fields = ("subject", "text", "channel")

    def __init__(self, channel: str = "#data", subject: str | None = None, text: str = "This is a default message"):
        super().__init__()
        self.channel, self.subject, self.text = channel, subject, text

    def notify(self, context: Any) -> None:
        Recorder.sent.append(
            {"channel": self.channel, "subject": self.subject, "text": self.text, "alert": context[ALERT_CONTEXT_KEY]}
        )

    async def async_notify(self, context: Any) -> None:
        Recorder.sent.append({"channel": self.channel, "subject": self.subject, "text": self.text, "async": True})


class FakeTI:
    dag_id, run_id, task_id, map_index, try_number, state = "crm_sync", "manual__1", "push", -1, 1, "running"

    def __init__(self, report: dict[str, Any] | None) -> None:
        self.report = report

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, key, map_indexes) == ("push", "report", -1)
        return json.dumps(self.report) if self.report is not None else None


@pytest.fixture(autouse=True)
def _clear() -> None:
    Recorder.sent.clear()


def test_the_notifiers_unset_fields_are_filled_and_never_rendered_as_templates(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.acme.com")
    report = dict(REPORT, failures_truncated=False, failure_file=None)
    report["failures"] = [{"user_id": "a@x.com", "attribute": "plan", "reason": "{{ 7 * 7 }} refused"}]
    inner = Recorder(channel="{{ ti.task_id }}-alerts")
    alert = SyncAlert(inner)
    alert({"dag": None, "ti": FakeTI(report), "exception": None})
    (sent,) = Recorder.sent
    assert sent["channel"] == "push-alerts", "the user's own templates are rendered"
    assert sent["subject"].startswith("[Airflow] Sync degraded: crm_sync / push (dx)")
    assert "{{ 7 * 7 }} refused" in sent["text"] and "49" not in sent["text"], "a vendor's words are not templates"
    assert sent["alert"].report_url.startswith("https://airflow.acme.com/userattrs/report/crm_sync/manual__1/push")
    assert inner.text == "This is a default message" and inner.subject is None, "the given notifier is left as is"


def test_fields_the_user_set_are_kept_and_can_use_the_message(monkeypatch) -> None:
    inner = Recorder(subject="Sync alert", text="{{ userattrs_alert.kind }}: {{ userattrs_alert.report_url }}")
    SyncAlert(inner)({"dag": None, "ti": FakeTI(REPORT), "exception": None})
    (sent,) = Recorder.sent
    assert sent["subject"] == "Sync alert"
    assert sent["text"].startswith("degraded: ") and "/userattrs/report/crm_sync/manual__1/push" in sent["text"]


class NeedsText(Recorder):
    """A notifier that cannot be built without its text, as the Slack provider's are."""

    def __init__(self, *, text: str, channel: str = "#data"):
        super().__init__(channel=channel, text=text)


def test_a_notifier_class_that_requires_a_filled_field_is_built_with_only_its_own_kwargs() -> None:
    alert = SyncAlert(f"{__name__}.NeedsText", notifier_kwargs={"channel": "#oncall"})
    alert({"dag": None, "ti": FakeTI(REPORT), "exception": None})
    (sent,) = Recorder.sent
    assert sent["channel"] == "#oncall" and sent["text"].startswith("Sync degraded: crm_sync / push")
    SyncAlert(NeedsText, notifier_kwargs={"text": "mine"})({"dag": None, "ti": FakeTI(REPORT), "exception": None})
    assert Recorder.sent[-1]["text"] == "mine", "a text given is kept"


def test_only_a_failed_or_degraded_sync_sends_unless_asked() -> None:
    healthy = dict(REPORT, failed=0, succeeded=4121, degraded=[])
    SyncAlert(Recorder())({"dag": None, "ti": FakeTI(healthy), "exception": None})
    assert Recorder.sent == []
    SyncAlert(Recorder())({"dag": None, "ti": FakeTI(healthy), "exception": RuntimeError("killed")})
    assert Recorder.sent[-1]["subject"].startswith("[Airflow] Sync failed: crm_sync / push (dx): RuntimeError: killed")
    SyncAlert(Recorder(), when=["healthy"])({"dag": None, "ti": FakeTI(healthy), "exception": None})
    assert Recorder.sent[-1]["subject"].startswith("[Airflow] Sync succeeded")
    SyncAlert(Recorder())({"dag": None, "ti": FakeTI(None), "exception": ValueError("no report")})
    assert "The task failed before it could report" in Recorder.sent[-1]["text"]
    with pytest.raises(ValueError, match="unknown"):
        SyncAlert(Recorder(), when=["sometimes"])
    with pytest.raises(TypeError, match="notifier"):
        SyncAlert(print)


@pytest.mark.skipif(not ASYNC_NOTIFIERS, reason="notifiers are awaitable from Airflow 3.1")
def test_a_deadline_alert_is_awaited_as_the_triggerer_does() -> None:
    """What ``AsyncCallback(SyncAlert, kwargs={...})`` does: the class called with its kwargs and the context, then
    awaited; the inner notifier comes from a dotted path (a deadline's kwargs must be serializable)."""
    context = {
        "dag_run": {"dag_id": "crm_sync", "dag_run_id": "scheduled__2026-12-06", "state": "running"},
        "deadline": {"id": "1", "deadline_time": "2026-12-06T03:00:00+00:00"},
    }
    alert = SyncAlert(notifier=f"{__name__}.Recorder", notifier_kwargs={"channel": "#oncall"}, context=context)

    async def run() -> None:
        await alert

    asyncio.run(run())
    (sent,) = Recorder.sent
    assert sent["async"] and sent["channel"] == "#oncall"
    assert sent["subject"] == "[Airflow] Sync deadline missed: crm_sync run scheduled__2026-12-06"
    assert "/userattrs/syncs?dag_id=crm_sync" in sent["text"] and "2026-12-06T03:00:00+00:00" in sent["text"]


@pytest.mark.skipif(not ASYNC_NOTIFIERS, reason="notifiers are awaitable from Airflow 3.1")
def test_a_deadline_alert_goes_out_through_the_smtp_notifiers_async_path(monkeypatch) -> None:
    pytest.importorskip("aiosmtplib")
    from tests.smtp_sink import SmtpSink

    context = {"dag_run": {"dag_id": "crm_sync", "dag_run_id": "r1", "state": "running"}, "deadline": {}}
    with SmtpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_DEADLINE_SMTP", json.dumps(sink.connection("pw-deadline-91")))
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.acme.com")
        alert = SyncAlert(
            notifier="airflow.providers.smtp.notifications.smtp.SmtpNotifier",
            notifier_kwargs={"to": "oncall@acme.test", "smtp_conn_id": "deadline_smtp"},
            context=context,
        )

        async def run() -> None:
            await alert

        asyncio.run(run())
        mail = sink.get(timeout=30)
    assert mail.subject == "[Airflow] Sync deadline missed: crm_sync run r1"
    html = mail.part("text/html")
    assert '<a href="https://airflow.acme.com/userattrs/syncs?dag_id=crm_sync">Sync history</a>' in html
    assert "pw-deadline-91" not in mail.raw.decode()


def test_alert_is_registered_as_both_callbacks_after_the_given_ones() -> None:
    def mine(context: Any) -> None:
        pass

    kwargs: dict[str, Any] = {"on_failure_callback": mine}
    alert = add_alert_callbacks(kwargs, Recorder())
    assert isinstance(alert, SyncAlert)
    assert kwargs["on_failure_callback"] == [mine, alert] and kwargs["on_success_callback"] == [alert]
    assert add_alert_callbacks(kwargs, None) is None


def test_the_operators_take_alert_and_check_the_degraded_parameters() -> None:
    from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator

    op = UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[], alert=Recorder())
    assert isinstance(op.alert, SyncAlert) and op.alert.notifier.channel == "#data"
    assert op.on_success_callback == [op.alert] and op.on_failure_callback == [op.alert]
    with pytest.raises(ValueError, match="degraded_failure_ratio"):
        MassUpdateOperator(task_id="m", conn_id="dx_default", attribute="a", value=1, degraded_failure_ratio=2)
    with pytest.raises(ValueError, match="degraded_after"):
        MassUpdateOperator(task_id="m", conn_id="dx_default", attribute="a", value=1, degraded_after=0)
    templated = UpdateUserAttributesOperator(
        task_id="t2", conn_id="dx_default", records=[], degraded_after="{{ params.limit }}"
    )
    assert "degraded_after" in templated.template_fields and "degraded_failure_ratio" in templated.template_fields


# ------------------------------------------------------------------------------------------------ degraded


def report(**counts: Any) -> dict[str, Any]:
    return {"total": 1000, "failed": 0, "deferrals": 0, "wall_seconds": 10.0, "duration_seconds": 10.0, **counts}


def rules_hit(rep: dict[str, Any], **rules: Any) -> list[str]:
    return [d["rule"] for d in degraded_reasons(rep, DegradedRules(**rules))]


def test_degraded_rules_and_their_defaults() -> None:
    assert rules_hit(report()) == []
    assert rules_hit(report(failed=1)) == ["failed_share"], "default: any failed user"
    assert rules_hit(report(failed=10), failure_ratio=0.01) == [] and rules_hit(report(failed=11), failure_ratio=0.01)
    assert rules_hit(report(failed=500), failure_ratio=None) == []
    assert rules_hit(report(total=0)) == ["no_users"]
    assert rules_hit(report(total=0), incremental=True) == [] and rules_hit(report(total=0), replay=True) == []
    assert rules_hit(report(total=0), when_empty=False) == []
    assert rules_hit(report(deferrals=2, wall_seconds=3700.0)) == ["postponed", "slow"][:1]
    assert rules_hit(report(deferrals=2), when_postponed=False) == []
    assert rules_hit(report(wall_seconds=601.0), after_seconds=600) == ["slow"]
    assert rules_hit(report(wall_seconds=600.0), after_seconds=600) == []
    assert rules_hit(report(total=0, error="401"), after_seconds=1) == [], "a run stopped on an error is a failure"
    (postponed,) = degraded_reasons(report(deferrals=2, wall_seconds=3700.0), DegradedRules())
    assert postponed["message"] == "the vendor's quota postponed users: deferred 2 times, 3,690 s waiting"


def test_degraded_messages_tolerate_any_shape() -> None:
    assert degraded_messages([{"rule": "slow", "message": "took long"}, "plain", {"rule": "x"}, 3]) == [
        "took long",
        "plain",
        "x",
    ]
    assert degraded_messages(None) == degraded_messages("x") == []
