"""Alerts that carry the sync report, sent by any Airflow notifier the deployment has (e-mail, Slack, Teams...).

One line in a DAG::

    UpdateUserAttributesOperator(..., alert=SmtpNotifier(to="data@acme.com"))

``alert`` wraps the notifier in a :class:`SyncAlert` registered as both ``on_success_callback`` and
``on_failure_callback``; it sends only when the task failed (its last try) or succeeded *degraded* (the report's
``degraded`` list, ``degraded.py``). ``SyncAlert(notifier)`` is also a notifier of its own, for any
callback (``on_failure_callback=SyncAlert(...)``) and, awaited, for deadline alerts.

The message: what happened and why (the report's counts, the degraded rules tripped or the error), the top
reasons grouped as the UI groups them (``ui/failures.py``: users per reason, the unit said), the failure file,
and a link to the task's "Sync report" page, built from Airflow's ``[api] base_url`` (without it, the link is
the page's path, and the message says to set the option). The user's notifier does the sending: SyncAlert
fills the fields it leaves unset (``subject``/``title``, ``html_content``, ``text``/``message``/``body``; a
Slack notifier's ``text`` in Slack's markup) and puts the message in the context as ``userattrs_alert``
(``{{ userattrs_alert.subject }}``, ``.text``, ``.html``, ``.slack``, ``.report_url``) for fields it sets
itself. The values are never rendered as templates (a vendor's words may contain ``{{``), and every text passes
through Airflow's secrets masker.
"""

from __future__ import annotations

import asyncio
import copy
import html
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from airflow_provider_userattrs.compat import ASYNC_NOTIFIERS, BaseNotifier, airflow_conf, literal, redact
from airflow_provider_userattrs.degraded import degraded_messages
from airflow_provider_userattrs.ui.links import report_path, run_path, syncs_path

__all__ = ["ALERT_CONTEXT_KEY", "AlertMessage", "SyncAlert", "add_alert_callbacks", "compose"]

ALERT_CONTEXT_KEY = "userattrs_alert"
"""The context key under which the inner notifier's templates find the message."""
REPORT_KEY = "report"
KINDS = ("failed", "degraded", "healthy")
TOP_REASONS = 5
REASON_SCAN_LIMIT = 200_000
"""Failure lines read to group the reasons (as the UI); beyond it the counts say they are partial."""
BASE_URL_HINT = "set [api] base_url (AIRFLOW__API__BASE_URL) for a full link"

FILLED_FIELDS: dict[str, str] = {
    "subject": "subject",
    "title": "subject",
    "html_content": "html",
    "text": "text",
    "message": "text",
    "body": "text",
    "message_body": "text",
}
"""Notifier fields SyncAlert fills when the user left them unset, and with what (``AlertMessage`` attribute)."""


@dataclass(frozen=True)
class AlertMessage:
    """One alert in the forms notifiers take; ``str()`` is the plain text."""

    kind: str
    """``failed``, ``degraded``, ``healthy`` or ``deadline``."""
    subject: str
    text: str
    html: str
    slack: str
    """Slack's mrkdwn: bold headings, ``<url|label>`` links, ``&``, ``<`` and ``>`` escaped."""
    report_url: str | None
    report: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Reason:
    """One group of failures: the users it hit, the (user, attribute) lines, rejected or retryable."""

    reason: str
    users: int
    lines: int
    retryable: bool
    attributes: list[str]


@dataclass(frozen=True)
class Reasons:
    groups: list[Reason]
    source: str
    """Where they were counted: "the failure file", or "the report's first N failures"."""


@dataclass(frozen=True)
class TaskRef:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int | None = None

    @property
    def label(self) -> str:
        return f"{self.task_id}[{self.map_index}]" if self.map_index >= 0 else self.task_id


# ------------------------------------------------------------------------------------------------ composing


def _plural(count: int, unit: str) -> str:
    return f"{count:,} {unit}" + ("" if count == 1 else "s")


def base_url() -> str:
    """Airflow's ``[api] base_url`` without a trailing slash; empty when unset."""
    try:
        return str(airflow_conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:  # a configuration that cannot be read must not stop an alert
        return ""


def _link(path: str, root: str) -> str:
    return f"{root}{path}" if root else path


def group_reasons(report: Mapping[str, Any], scan_limit: int = REASON_SCAN_LIMIT) -> Reasons:
    """The report's failures grouped by reason as the UI groups them: from the failure file when it can be read,
    else from the report's first failures."""
    from airflow_provider_userattrs.ui.failures import summarize

    url = str(report.get("failure_file") or "")
    summary = None
    source = "the failure file"
    if url and report.get("failed"):
        try:
            from airflow_provider_userattrs.sync.storage import read_lines

            summary = summarize(read_lines(url), scan_limit=scan_limit)
            if summary.partial:
                source += f" (its first {scan_limit:,} lines)"
        except Exception:  # unreadable here (removed, other storage): the report's own sample
            summary = None
    if summary is None:
        sample = [f for f in report.get("failures") or [] if isinstance(f, dict)]
        summary = summarize(iter(sample))
        source = f"the report's first {len(sample)} failures" if report.get("failures_truncated") else "the report"
    groups = [Reason(g.reason, g.users, g.count, g.retryable, list(g.attributes)) for g in summary.groups]
    return Reasons(groups, source)


def _reason_line(reason: Reason) -> str:
    """``12 users (rejected): <reason>  [attributes] (96 attribute values)``: users first, the unit always said."""
    kind = "retryable" if reason.retryable else "rejected"
    names = [name for name in reason.attributes if name]
    where = f"  [{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}]" if names else ""
    values = f" ({_plural(reason.lines, 'attribute value')})" if reason.lines != reason.users else ""
    return f"{_plural(reason.users, 'user')} ({kind}): {reason.reason}{where}{values}"


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class _Parts:
    """The message's content once, rendered below as text, HTML and Slack."""

    title: str
    subject: str
    context_line: str
    facts: list[str]
    why_heading: str
    why: list[str]
    reasons_heading: str
    reasons: list[str]
    more_reasons: int
    failure_file: str | None
    report_url: str | None
    report_url_is_full: bool
    extra_links: list[tuple[str, str]] = field(default_factory=list)


def compose(
    report: Mapping[str, Any] | None,
    task: TaskRef,
    *,
    kind: str,
    error: str | None = None,
    root: str | None = None,
    top_reasons: int = TOP_REASONS,
    reasons: Reasons | None = None,
) -> AlertMessage:
    """The alert for one sync task instance.

    :param report: the task's report (None when it failed before pushing one).
    :param kind: ``failed``, ``degraded`` or ``healthy``.
    :param error: why the task failed (the exception), when it did.
    :param root: the API server's address (``[api] base_url``); None reads it, "" leaves the link a path.
    :param reasons: the failures grouped (default: :func:`group_reasons`).
    """
    report = report or {}
    root = base_url() if root is None else root.rstrip("/")
    vendor = report.get("vendor") or "?"
    where = f"{task.dag_id} / {task.label}"
    total, failed = int(report.get("total") or 0), int(report.get("failed") or 0)
    retryable = int(report.get("retryable_users") or 0)
    heading = {"failed": "Sync failed", "degraded": "Sync degraded", "healthy": "Sync succeeded"}.get(kind, "Sync")
    degraded = degraded_messages(report.get("degraded"))
    if kind == "failed":
        cause = report.get("error") or error or (f"{failed:,} of {_plural(total, 'user')} failed" if report else "")
        summary = _one_line(cause or "the task failed", 120)
    elif kind == "degraded" and degraded:
        summary = degraded[0]
    else:
        summary = f"{report.get('succeeded', 0):,} of {_plural(total, 'user')} delivered"
    subject = _one_line(f"[Airflow] {heading}: {where} ({vendor}): {summary}", 250)

    try_part = f", try {task.try_number}" if task.try_number else ""
    conn = report.get("conn_id")
    context_line = f"Run {task.run_id}{try_part}" + (f" · {vendor} via {conn}" if conn else "")
    facts: list[str] = []
    if report:
        share = f" ({failed / total:.2%}" if total else " ("
        facts.append(
            f"Users: {total:,} read · {report.get('succeeded', 0):,} delivered · {failed:,} failed"
            + (f"{share}, {retryable:,} of them transiently)" if failed else "")
        )
        timing = [f"{int(report.get('requests_sent') or 0):,}"]
        if report.get("wall_seconds") is not None:
            timing.append(f"took {float(report['wall_seconds']):,.1f} s")
        if report.get("deferrals"):
            timing.append(f"{_plural(int(report['deferrals']), 'deferral')}")
        if report.get("throttled_requests"):
            timing.append(f"{int(report['throttled_requests']):,} answered 429")
        facts.append("Requests: " + " · ".join(timing))
        if report.get("dry_run"):
            facts.append("Dry run: nothing was sent")
    else:
        facts.append("The task failed before it could report (no report was pushed).")
    why_heading, why = "", []
    if kind == "failed":
        why_heading = "Why it failed:"
        why = [_one_line(text, 600) for text in dict.fromkeys(t for t in (report.get("error"), error) if t)]
        if degraded:
            why += [f"also degraded: {d}" for d in degraded]
    elif degraded:
        why_heading, why = "Why it is degraded:", list(degraded)

    groups: list[Reason] = []
    reasons_heading = ""
    if failed and report:
        found = reasons if reasons is not None else group_reasons(report)
        groups = found.groups
        reasons_heading = f"Top reasons (users per reason, from {found.source}):"
    shown = [_reason_line(g) for g in groups[:top_reasons]]
    failure_file = str(report["failure_file"]) if report.get("failure_file") and failed else None
    path = report_path(task.dag_id, task.run_id, task.task_id, task.map_index)
    parts = _Parts(
        title=f"{heading}: {where}",
        subject=subject,
        context_line=context_line,
        facts=facts,
        why_heading=why_heading,
        why=why,
        reasons_heading=reasons_heading,
        reasons=shown,
        more_reasons=max(0, len(groups) - top_reasons),
        failure_file=failure_file,
        report_url=_link(path, root),
        report_url_is_full=bool(root),
    )
    return _render(kind, parts, report)


def compose_deadline(context: Mapping[str, Any], *, root: str | None = None) -> AlertMessage:
    """The alert for a missed deadline (the triggerer's context: ``dag_run`` and ``deadline``; no report yet)."""
    root = base_url() if root is None else root.rstrip("/")
    run = context.get("dag_run") or {}
    run = run if isinstance(run, Mapping) else {k: getattr(run, k, None) for k in ("dag_id", "run_id", "state")}
    deadline = context.get("deadline") or {}
    dag_id, run_id = str(run.get("dag_id") or "?"), str(run.get("dag_run_id") or run.get("run_id") or "?")
    when = deadline.get("deadline_time") if isinstance(deadline, Mapping) else None
    parts = _Parts(
        title=f"Sync deadline missed: {dag_id}",
        subject=_one_line(f"[Airflow] Sync deadline missed: {dag_id} run {run_id}", 250),
        context_line=f"Run {run_id}" + (f" · state {run.get('state')}" if run.get("state") else ""),
        facts=[f"The run missed its deadline ({when})." if when else "The run missed its deadline."],
        why_heading="",
        why=[],
        reasons_heading="",
        reasons=[],
        more_reasons=0,
        failure_file=None,
        report_url=_link(syncs_path(dag_id), root),
        report_url_is_full=bool(root),
        extra_links=[("The run", _link(run_path(dag_id, run_id), root))],
    )
    return _render("deadline", parts, {})


def _render(kind: str, parts: _Parts, report: Mapping[str, Any]) -> AlertMessage:
    link_label = "Sync history" if kind == "deadline" else "Sync report"
    hint = "" if parts.report_url_is_full else f" ({BASE_URL_HINT})"
    # plain text
    lines = [parts.title, parts.context_line, "", *parts.facts]
    if parts.why:
        lines += ["", parts.why_heading, *(f"  - {w}" for w in parts.why)]
    if parts.reasons:
        lines += ["", parts.reasons_heading, *(f"  {r}" for r in parts.reasons)]
        if parts.more_reasons:
            lines.append(f"  ... and {parts.more_reasons} more reasons: see the sync report")
    lines.append("")
    if parts.failure_file:
        lines.append(f"Failure file: {parts.failure_file}")
    lines.append(f"{link_label}: {parts.report_url}{hint}")
    lines += [f"{label}: {url}" for label, url in parts.extra_links]
    text = "\n".join(lines)

    # HTML (e-mail)
    e = html.escape
    colour = {"failed": "#c62828", "degraded": "#b26a00"}.get(kind, "#1a202c")
    out = [
        '<div style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;color:#1a202c">',
        f'<h2 style="font-size:18px;margin:0 0 4px;color:{colour}">{e(parts.title)}</h2>',
        f'<p style="margin:0 0 10px;color:#5f6b7a">{e(parts.context_line)}</p>',
        "".join(f'<p style="margin:2px 0">{e(f)}</p>' for f in parts.facts),
    ]
    if parts.why:
        out.append(f'<p style="margin:10px 0 2px"><b>{e(parts.why_heading)}</b></p><ul style="margin:0">')
        out += [f"<li>{e(w)}</li>" for w in parts.why]
        out.append("</ul>")
    if parts.reasons:
        out.append(f'<p style="margin:10px 0 2px"><b>{e(parts.reasons_heading)}</b></p><ul style="margin:0">')
        out += [f"<li>{e(r)}</li>" for r in parts.reasons]
        if parts.more_reasons:
            out.append(f"<li>... and {parts.more_reasons} more reasons: see the sync report</li>")
        out.append("</ul>")
    if parts.failure_file:
        out.append(f'<p style="margin:10px 0 2px">Failure file: <code>{e(parts.failure_file)}</code></p>')
    url = parts.report_url or ""
    if parts.report_url_is_full:
        out.append(f'<p style="margin:10px 0 2px"><a href="{e(url)}">{link_label}</a>: {e(url)}</p>')
    else:
        out.append(f'<p style="margin:10px 0 2px">{link_label}: <code>{e(url)}</code>{e(hint)}</p>')
    for label, extra in parts.extra_links:
        out.append(f'<p style="margin:2px 0">{e(label)}: {e(extra)}</p>')
    out.append("</div>")
    body = "".join(out)

    # Slack mrkdwn
    def s(value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    slack = [f"*{s(parts.title)}*", s(parts.context_line), *(s(f) for f in parts.facts)]
    if parts.why:
        slack += [f"*{s(parts.why_heading)}*", *(f"• {s(w)}" for w in parts.why)]
    if parts.reasons:
        slack += [f"*{s(parts.reasons_heading)}*", *(f"• {s(r)}" for r in parts.reasons)]
        if parts.more_reasons:
            slack.append(f"• ... and {parts.more_reasons} more reasons: see the sync report")
    if parts.failure_file:
        slack.append(f"Failure file: `{s(parts.failure_file)}`")
    if parts.report_url_is_full:
        slack.append(f"<{url}|{link_label}>")
    else:
        slack.append(f"{link_label}: `{s(url)}`{s(hint)}")
    for label, extra in parts.extra_links:
        slack.append(f"<{extra}|{s(label)}>" if parts.report_url_is_full else f"{s(label)}: `{s(extra)}`")
    slack_text = "\n".join(slack)

    return AlertMessage(
        kind=kind,
        subject=_masked(parts.subject),
        text=_masked(text),
        html=_masked(body),
        slack=_slack_masked(slack_text),
        report_url=parts.report_url,
        report=dict(report),
    )


def _masked(text: str) -> str:
    """Every text of an alert through Airflow's secrets masker (what the task registered: its tokens)."""
    return str(redact(text))


_SLACK_CODE = re.compile(r"(`[^`\n]*`)")


def _slack_masked(text: str) -> str:
    """The Slack text masked, each hidden secret shown as inline code (`` `***` ``): mrkdwn has no escape for ``*``,
    so the masker's ``***`` would open or close bold (``Invalid token ***`` would lose its stars, or embolden what
    follows up to the next one); code spans already there are left as they are."""
    parts = _SLACK_CODE.split(_masked(text))
    return "".join(part if i % 2 else part.replace("***", "`***`") for i, part in enumerate(parts))


# ------------------------------------------------------------------------------------------------ the notifier


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"notifier {path!r}: give the class's full dotted path")
    return getattr(__import__(module, fromlist=[name]), name)


def _state(ti: Any) -> str:
    state = getattr(ti, "state", None)
    return str(getattr(state, "value", state) or "")


class SyncAlert(BaseNotifier):
    """Send the sync's report through ``notifier`` when the task failed or is degraded.

    :param notifier: the notifier that sends (``SmtpNotifier(to=...)``, ``SlackWebhookNotifier(...)``, any
        ``BaseNotifier``), or its class or dotted path with ``notifier_kwargs`` (what a deadline alert's
        ``AsyncCallback`` kwargs can carry). Fields it leaves unset are filled with the message (module
        docstring); the message is in its template context as ``userattrs_alert``.
    :param notifier_kwargs: with a class or a path: its arguments, a new notifier per alert.
    :param when: which outcomes send: ``"failed"``, ``"degraded"`` (default both), ``"healthy"``.
    :param top_reasons: how many reasons the message lists (the most users first).
    :param context: the context when awaited (deadline alerts pass it); unused when called as a callback.
    """

    template_fields: Sequence[str] = ()

    def __init__(
        self,
        notifier: Any,
        *,
        notifier_kwargs: Mapping[str, Any] | None = None,
        when: Iterable[str] = ("failed", "degraded"),
        top_reasons: int = TOP_REASONS,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.context = cast(Any, dict(context or {}))  # what BaseNotifier.__await__ passes on (3.1+)
        if isinstance(notifier, str):
            notifier = _import(notifier)
        if isinstance(notifier, SyncAlert):
            raise TypeError("SyncAlert wraps the notifier that sends, not another SyncAlert")
        if not (isinstance(notifier, BaseNotifier) or (inspect.isclass(notifier) and callable(notifier))):
            raise TypeError(f"notifier must be an Airflow notifier (BaseNotifier), its class or path; got {notifier!r}")
        if isinstance(notifier, BaseNotifier) and notifier_kwargs:
            raise TypeError("notifier_kwargs go with a notifier class or path, not an instance")
        self.notifier = notifier
        self.notifier_kwargs = dict(notifier_kwargs or {})
        self.when = tuple(when)
        unknown = set(self.when) - set(KINDS)
        if unknown:
            raise ValueError(f"when: {sorted(unknown)} unknown; choose among {list(KINDS)}")
        self.top_reasons = int(top_reasons)

    # -- what to send ----------------------------------------------------------------------------------------

    def message_for(self, context: Mapping[str, Any]) -> AlertMessage | None:
        """The alert this context calls for, or None (a healthy sync, or an outcome not in ``when``)."""
        ti = context.get("ti") or context.get("task_instance")
        if ti is None and "deadline" in context:
            return compose_deadline(context)
        if ti is None:
            raise ValueError("SyncAlert needs a task instance's context (use it as a task callback or alert=)")
        report = self._report(context, ti)
        exception = context.get("exception")
        if exception is not None or _state(ti) in ("failed", "upstream_failed"):
            kind = "failed"
        elif report and degraded_messages(report.get("degraded")):
            kind = "degraded"
        else:
            kind = "healthy"
        if kind not in self.when:
            self.log.info("userattrs alert: the sync is %s; nothing to send (when=%s)", kind, list(self.when))
            return None
        map_index = getattr(ti, "map_index", -1)
        task = TaskRef(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=int(map_index if map_index is not None else -1),
            try_number=getattr(ti, "try_number", None),
        )
        error = f"{type(exception).__name__}: {exception}" if exception is not None else None
        return compose(report, task, kind=kind, error=error, top_reasons=self.top_reasons)

    def _report(self, context: Mapping[str, Any], ti: Any) -> dict[str, Any] | None:
        """This try's report: its XCom (cleared when a try starts), else what the operator kept in memory."""
        value: Any = None
        try:
            map_index = getattr(ti, "map_index", -1)
            value = ti.xcom_pull(
                task_ids=ti.task_id, key=REPORT_KEY, map_indexes=int(map_index if map_index is not None else -1)
            )
        except Exception:
            self.log.debug("userattrs alert: the report XCom could not be read", exc_info=True)
            value = getattr(context.get("task"), "_userattrs_report", None)
        if isinstance(value, list):  # an older xcom_pull answers a list for one map index
            value = value[0] if value else None
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value)
            except ValueError:
                value = None
        return value if isinstance(value, dict) else None

    # -- who sends -------------------------------------------------------------------------------------------

    def sender(self, message: AlertMessage) -> Any:
        """A notifier for this alert: a copy of the one given (or a new one), its unset fields filled."""
        inner: Any
        if isinstance(self.notifier, BaseNotifier):
            inner = copy.copy(self.notifier)
        else:
            inner = self.notifier(**{**_required_fields(self.notifier), **self.notifier_kwargs})
        slack = type(inner).__module__.startswith("airflow.providers.slack")
        template_fields = set(getattr(inner, "template_fields", ()) or ())
        for name, source in FILLED_FIELDS.items():
            if not hasattr(inner, name) or not _left_unset(inner, name):
                continue
            value = message.slack if (slack and source == "text") else getattr(message, source)
            setattr(inner, name, _literal(value) if name in template_fields else value)
        return inner

    def notify(self, context: Any) -> None:
        """Send the alert (task callbacks: ``on_success_callback``, ``on_failure_callback``)."""
        message = self.message_for(context)
        if message is None:
            return
        context[ALERT_CONTEXT_KEY] = message
        self.sender(message)(context)
        self.log.info("userattrs alert sent (%s): %s", message.kind, message.subject)

    async def async_notify(self, context: Any) -> None:
        """Send the alert from the triggerer (deadline alerts): the inner notifier's ``async_notify`` when it has
        one, else its ``notify`` in a thread."""
        if context.get("ti") is not None or context.get("task_instance") is not None:
            message = await asyncio.to_thread(self.message_for, context)
        else:
            message = self.message_for(context)
        if message is None:
            return
        context[ALERT_CONTEXT_KEY] = message
        inner = self.sender(message)
        if ASYNC_NOTIFIERS and type(inner).async_notify is not BaseNotifier.async_notify:
            inner._update_context(context)
            inner.render_template_fields(context)
            await inner.async_notify(context)
        else:
            await asyncio.to_thread(inner, context)
        self.log.info("userattrs alert sent (%s): %s", message.kind, message.subject)


def _required_fields(notifier_class: Any) -> dict[str, str]:
    """The fields SyncAlert fills that ``notifier_class`` cannot be built without, left empty for SyncAlert to fill
    (the Slack provider's notifiers require ``text``): a class or path with only its connection in
    ``notifier_kwargs`` then works."""
    try:
        parameters = inspect.signature(notifier_class).parameters.values()
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: "" for p in parameters if p.name in FILLED_FIELDS and p.kind in kinds and p.default is p.empty}


def _left_unset(notifier: Any, name: str) -> bool:
    """Whether the user left ``name`` as the notifier's default (None, empty, or the signature's default)."""
    value = getattr(notifier, name, None)
    if value is None or value == "":
        return True
    try:
        default = inspect.signature(type(notifier).__init__).parameters[name].default
    except (KeyError, TypeError, ValueError):
        return False
    return default is not inspect.Parameter.empty and isinstance(value, str) and value == default


def _literal(value: str) -> Any:
    """``value`` as a template field that is never rendered (a vendor's words may contain ``{{``)."""
    return literal(value)


# ------------------------------------------------------------------------------------------------ operators


def as_sync_alert(alert: Any) -> SyncAlert:
    """The operators' ``alert``: a SyncAlert as given, or one around a notifier."""
    return alert if isinstance(alert, SyncAlert) else SyncAlert(alert)


def add_alert_callbacks(kwargs: dict[str, Any], alert: Any) -> SyncAlert | None:
    """Register ``alert`` (a notifier, or a SyncAlert) as both ``on_success_callback`` and ``on_failure_callback``
    of the operator arguments ``kwargs``, after the callbacks already there; the alert itself sends only for a
    failed or degraded sync."""
    if alert is None:
        return None
    sync_alert = as_sync_alert(alert)
    for name in ("on_success_callback", "on_failure_callback"):
        existing = kwargs.get(name)
        callbacks = [] if existing is None else list(existing) if isinstance(existing, list | tuple) else [existing]
        if not any(callback is sync_alert for callback in callbacks):
            callbacks.append(sync_alert)
        kwargs[name] = callbacks
    return sync_alert
