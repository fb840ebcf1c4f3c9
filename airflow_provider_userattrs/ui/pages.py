"""Server-rendered HTML for the two views: no CDN, no web fonts, an inline SVG chart and a small inline script.

Every value that comes from a report, a failure file or a run id is untrusted text and goes through
:func:`esc` (or :func:`quote` inside URLs); nothing here ever receives a connection, so no token, password or
extra can reach a page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote as _quote
from urllib.parse import urlencode

from airflow_provider_userattrs.ui.history import RunPoint, SyncFilter, is_failed
from airflow_provider_userattrs.ui.links import report_path
from airflow_provider_userattrs.ui.models import QUOTA_KEYS, ReportResponse, SyncEntry

VENDORS = ("altatech", "fyno", "dx", "usercom")
STATES = ("success", "failed", "up_for_retry", "running", "upstream_failed", "skipped")
VENDOR_COLOURS = {"altatech": "#6a4c93", "fyno": "#1982c4", "dx": "#ff924c", "usercom": "#8ac926"}
DELIVERED, FAILED, DEGRADED = "#2e7d32", "#c62828", "#e0a100"

STYLE = """
:root { color-scheme: light dark; --fg: #1a202c; --muted: #5f6b7a; --bg: #ffffff; --line: #d9dee5; --card: #f5f7fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e2e8f0; --muted: #a0aec0; --bg: #1a202c; --line: #3a4556; --card: #232c3b; }
}
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 16px 20px; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 22px 0 8px; }
a { color: #1f6fd1; } .muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid var(--line); padding: 5px 8px;
text-align: left; vertical-align: top; } th { font-weight: 600; white-space: nowrap; } td.n, th.n { text-align: right; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; } .card { background: var(--card); border-radius: 6px;
padding: 8px 14px; min-width: 110px; } .card b { display: block; font-size: 20px; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; margin: 8px 0 14px; }
label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; padding: 4px 8px; }
button.primary { background: #1f6fd1; color: #fff; border: 0; border-radius: 4px; padding: 6px 14px; cursor: pointer; }
button[disabled] { opacity: .5; cursor: not-allowed; }
.state { border-radius: 10px; padding: 1px 8px; font-size: 12px; background: var(--card); white-space: nowrap; }
.state-success { background: #d4edda; color: #155724; } .state-failed, .state-upstream_failed { background: #f8d7da;
color: #721c24; } .state-degraded { background: #ffe8a3; color: #6b4500; } .state-up_for_retry { background: #fde2c8;
color: #7a3e00; }
.table-wrap { overflow-x: auto; }
table.syncs { table-layout: fixed; font-size: 13px; }
table.syncs th { font-size: 12px; overflow: hidden; text-overflow: ellipsis; }
table.syncs td { overflow: hidden; } table.syncs td.n, table.syncs th.n { padding: 5px 6px; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.clip { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.stack { display: flex; flex-direction: column; align-items: flex-start; gap: 3px; }
.fig { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 12px; }
.tag { font-size: 11px; color: var(--muted); white-space: nowrap; }
tr.row-failed { background: rgba(198, 40, 40, .07); }
tr.row-failed > td:first-child { box-shadow: inset 4px 0 #c62828; }
tr.row-degraded { background: rgba(224, 161, 0, .10); }
tr.row-degraded > td:first-child { box-shadow: inset 4px 0 #e0a100; }
.banner { border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.banner-degraded { background: #fff4d1; color: #6b4500; } .banner ul { margin: 4px 0 0; padding-left: 20px; }
.bad { color: #c62828; } .ok { color: #2e7d32; } .pager { margin: 10px 0; display: flex; gap: 14px; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
#replay-result { margin-left: 10px; }
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def quote(value: Any) -> str:
    return _quote(str(value), safe="")


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}{tail}</body></html>"
    )


def error_page(status: int, message: str, base_path: str) -> str:
    hint = f'<p><a href="{esc(base_path)}/" target="_top">Sign in to Airflow</a></p>' if status == 401 else ""
    return _page(f"{status}", f"<h1>{status}</h1><p>{esc(message)}</p>{hint}")


def run_url(base_path: str, dag_id: str, run_id: str) -> str:
    return f"{base_path}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def task_url(base_path: str, e: SyncEntry) -> str:
    url = f"{run_url(base_path, e.dag_id, e.run_id)}/tasks/{quote(e.task_id)}"
    return url + (f"/mapped/{e.map_index}" if e.map_index >= 0 else "")


def report_url(base_path: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    return base_path + report_path(dag_id, run_id, task_id, map_index)


# ------------------------------------------------------------------------------------------------ chart


def axis_labels(points: list[RunPoint]) -> list[tuple[str, str]]:
    """One (time, date) label per point, distinct: runs started in the same minute show their seconds, and
    points still alike (one run's vendors, or the same second) their vendor, then their rank."""

    def stamp(p: RunPoint, fmt: str) -> str:
        return p.start_date.strftime(fmt) if p.start_date else "?"

    def seconds(p: RunPoint, label: str) -> str:
        return stamp(p, "%H:%M:%S")

    def vendor(p: RunPoint, label: str) -> str:
        return f"{label} {p.vendor}"

    labels = [(stamp(p, "%H:%M"), stamp(p, "%m-%d")) for p in points]
    for refine in (seconds, vendor):
        seen: dict[tuple[str, str], int] = {}
        for label in labels:
            seen[label] = seen.get(label, 0) + 1
        labels = [(refine(p, t), d) if seen[(t, d)] > 1 else (t, d) for p, (t, d) in zip(points, labels, strict=True)]
    rank: dict[tuple[str, str], int] = {}
    distinct = []
    for t, d in labels:
        rank[(t, d)] = rank.get((t, d), 0) + 1
        distinct.append((t if rank[(t, d)] == 1 else f"{t} #{rank[(t, d)]}", d))
    return distinct


def _marker(kind: str, x: float, y: float, tip: str) -> str:
    """A failed run's red disc with a cross, a degraded run's amber triangle with a bang, centred on (x, y)."""
    if kind == "failed":
        return (
            f'<g class="mark-failed"><title>{esc(tip)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{FAILED}"/>'
            f'<path d="M{x - 3:.1f} {y - 3:.1f}L{x + 3:.1f} {y + 3:.1f}M{x + 3:.1f} {y - 3:.1f}'
            f'L{x - 3:.1f} {y + 3:.1f}" stroke="#fff" stroke-width="1.8"/></g>'
        )
    return (
        f'<g class="mark-degraded"><title>{esc(tip)}</title>'
        f'<path d="M{x:.1f} {y - 7:.1f}L{x + 7:.1f} {y + 5:.1f}L{x - 7:.1f} {y + 5:.1f}Z" fill="{DEGRADED}"/>'
        f'<path d="M{x:.1f} {y - 3:.1f}V{y + 1:.1f}M{x:.1f} {y + 2.6:.1f}V{y + 3.6:.1f}" stroke="#1a202c" '
        'stroke-width="1.6"/></g>'
    )


def chart_svg(points: list[RunPoint], width: int = 1400, height: int = 280) -> str:
    """Delivered and failed users per run and vendor, oldest left: two bars per point, the vendor as a strip, a
    failed run marked red and a degraded one amber (a band behind its bars and a sign above them)."""
    if not points:
        return '<p class="muted">No sync reports yet.</p>'
    left, bottom, top = 56, 62, 24
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(max(p.delivered, p.failed) for p in points) or 1
    slot = plot_w / len(points)
    bar = max(1.0, min(18.0, slot * 0.38))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Delivered and failed users per run" '
        f'style="width:100%;max-width:{width}px;height:auto;display:block" viewBox="0 0 {width} {height}" '
        'id="sync-chart">'
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#8884" stroke-width="0.5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="currentColor">'
            f"{value:,.0f}</text>"
        )
    label_every = max(1, -(-len(points) // 12))  # at most 12 labels, so that they never overlap
    labels = axis_labels(points)
    for i, p in enumerate(points):
        x = left + i * slot + slot / 2
        status = p.status
        tip = f"{p.dag_id} {p.run_id} ({p.vendor}): {p.delivered:,} delivered, {p.failed:,} failed"
        if status == "failed":
            tip += f"; {p.failed_tasks} sync task(s) failed"
        elif status == "degraded":
            tip += f"; {p.degraded_tasks} sync task(s) degraded"
        if p.quota_use is not None:
            tip += f"; {p.quota_use.describe()}"
        if status != "ok":
            colour = FAILED if status == "failed" else DEGRADED
            parts.append(
                f'<rect class="band-{status}" x="{x - slot / 2 + 1:.1f}" y="{top}" width="{max(1.0, slot - 2):.1f}" '
                f'height="{plot_h}" fill="{colour}" fill-opacity="0.12"><title>{esc(tip)}</title></rect>'
            )
        tallest = 0.0
        for offset, value, colour, kind in (
            (-bar, p.delivered, DELIVERED, "delivered"),
            (0, p.failed, FAILED, "failed"),
        ):
            h = max(plot_h * value / peak, 1.5 if value else 0.0)  # a few failures stay visible next to thousands
            tallest = max(tallest, h)
            parts.append(
                f'<rect class="bar-{kind}" x="{x + offset:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{esc(tip)}</title></rect>'
            )
        if status != "ok":
            parts.append(_marker(status, x, max(top - 12 + 7, top + plot_h - tallest - 10), tip))
        strip = VENDOR_COLOURS.get(p.vendor, "#999")
        parts.append(
            f'<rect x="{x - bar:.1f}" y="{top + plot_h + 2}" width="{2 * bar:.1f}" height="4" fill="{strip}">'
            f"<title>{esc(p.vendor)}</title></rect>"
        )
        if i % label_every == 0:
            when, day = labels[i]
            fill = {"failed": FAILED, "degraded": "#9a6400"}.get(status, "currentColor")
            parts.append(
                f'<text class="x-label" x="{x:.1f}" y="{top + plot_h + 18}" font-size="10" text-anchor="middle" '
                f'fill="{fill}"><tspan x="{x:.1f}">{esc(when)}</tspan>'
                f'<tspan x="{x:.1f}" dy="12" fill-opacity="0.75">{esc(day)}</tspan></text>'
            )
    legend: list[tuple[str, str, str]] = [
        ("delivered users", DELIVERED, "box"),
        ("failed users", FAILED, "box"),
        *((v, c, "box") for v, c in VENDOR_COLOURS.items()),
        ("failed run", "failed", "mark"),
        ("degraded run", "degraded", "mark"),
    ]
    lx = float(left)
    for name, colour, shape in legend:
        if shape == "box":
            parts.append(f'<rect x="{lx:.1f}" y="{height - 12}" width="10" height="10" fill="{colour}"/>')
        else:
            parts.append(_marker(colour, lx + 5, height - 7, name))
        parts.append(f'<text x="{lx + 14:.1f}" y="{height - 3}" font-size="11" fill="currentColor">{esc(name)}</text>')
        lx += 30 + 6.5 * len(name)
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ history page


def _options(values: Iterable[str], selected: str | None, any_label: str) -> str:
    out = [f'<option value="">{esc(any_label)}</option>']
    for v in values:
        mark = " selected" if v == selected else ""
        out.append(f'<option value="{esc(v)}"{mark}>{esc(v)}</option>')
    return "".join(out)


def _filters(flt: SyncFilter, dag_ids: list[str], base_path: str) -> str:
    return (
        f'<form class="filters" method="get" action="{esc(base_path)}/userattrs/syncs">'
        f'<label>DAG<select name="dag_id">{_options(dag_ids, flt.dag_id, "any DAG")}</select></label>'
        f'<label>Vendor<select name="vendor">{_options(VENDORS, flt.vendor, "any vendor")}</select></label>'
        f'<label>State<select name="state">{_options(STATES, flt.state, "any state")}</select></label>'
        f'<label>Per page<input type="number" name="limit" min="1" max="100" value="{flt.limit}"></label>'
        '<button type="submit">Filter</button></form>'
    )


QUOTA_LABELS = {
    "deferrals": lambda v: f"{int(v):,} deferral" + ("" if int(v) == 1 else "s"),
    "waited_seconds": lambda v: f"{float(v):,.1f} s waited",
    "throttled_requests": lambda v: f"{int(v):,} \u00d7 429",
    "throttled_ratio": lambda v: f"{100 * float(v):.2f} % 429s",
    "quota_used": lambda v: f"{100 * float(v):.1f} % of quota",
}
"""The quota figures of a history row, short enough for their column (the report page has them in full)."""


def _quota_cell(e: SyncEntry) -> str:
    figures = []
    for key in QUOTA_KEYS:
        value = getattr(e, key)
        if value is None:
            continue
        try:
            shown = QUOTA_LABELS[key](value)
        except (TypeError, ValueError):
            shown = f"{key}: {value}"
        figures.append(f'<span class="fig" title="{esc(key)}: {esc(value)}">{esc(shown)}</span>')
    return "".join(figures)


def row_status(e: SyncEntry) -> str:
    """``failed``, ``degraded`` or ``ok``: how a history row stands out."""
    return "failed" if is_failed(e) else "degraded" if e.degraded else "ok"


def _row(e: SyncEntry, base_path: str, with_quota: bool) -> str:
    chunk = f"{e.task_id}[{e.map_index}]" if e.map_index >= 0 else e.task_id
    tags = ('<span class="tag">replay</span> ' if e.replay else "") + (
        '<span class="tag">dry run</span>' if e.dry_run else ""
    )
    status = row_status(e)
    badges = f'<span class="state state-{esc(e.state)}">{esc(e.state)}</span>'
    if e.degraded:
        badges += f'<span class="state state-degraded" title="{esc("; ".join(e.degraded))}">degraded</span>'
    started = (
        f'<div class="nowrap">{e.start_date:%Y-%m-%d}</div><div class="nowrap">{e.start_date:%H:%M:%S}</div>'
        if e.start_date
        else ""
    )
    report = report_url(base_path, e.dag_id, e.run_id, e.task_id, e.map_index)
    cells = [
        f"<td>{started}</td>",
        f'<td><div class="clip"><a class="report-link" href="{esc(report)}" title="{esc(chunk)}">{esc(chunk)}</a> '
        f'{tags}</div><div class="clip muted" title="{esc(e.dag_id)}">{esc(e.dag_id)}</div>'
        f'<div class="clip"><a href="{esc(run_url(base_path, e.dag_id, e.run_id))}" target="_top" '
        f'title="{esc(e.run_id)}">{esc(e.run_id)}</a></div></td>',
        f'<td><div class="clip">{esc(e.vendor)}</div><div class="clip muted" title="{esc(e.conn_id)}">'
        f"{esc(e.conn_id)}</div></td>",
        f'<td><div class="stack">{badges}</div></td>',
        f'<td class="n">{e.total:,}</td><td class="n ok">{e.succeeded:,}</td>',
        f'<td class="n{" bad" if e.failed else ""}">{e.failed:,}</td><td class="n">{e.retryable_users:,}</td>',
        f'<td class="n">{"" if e.requests_sent is None else f"{e.requests_sent:,}"}</td>',
        f'<td class="n">{"" if e.duration_seconds is None else f"{e.duration_seconds:,.1f} s"}</td>',
    ]
    if with_quota:
        cells.append(f"<td>{_quota_cell(e)}</td>")
    row_class = f' class="row-{status}"' if status != "ok" else ""
    return f"<tr{row_class}>" + "".join(cells) + "</tr>"


COLUMNS: list[tuple[str, str, str]] = [
    ("Started", "", "7.2em"),
    ("Task (report) / DAG / run", "", ""),
    ("Vendor", "", "9em"),
    ("State", "", "8.4em"),
    ("Users", "n", "6.2em"),
    ("Delivered", "n", "6.6em"),
    ("Failed", "n", "5.9em"),
    ("Retryable", "n", "6.6em"),
    ("Requests", "n", "6.4em"),
    ("Duration", "n", "6.4em"),
]
"""The history's columns: heading, class, width (``table-layout: fixed``: the task column takes what is left,
so that the table always fits its frame; long ids are cut with an ellipsis and shown whole on hover)."""
QUOTA_COLUMN = ("Quota", "", "10.5em")


def _pager(flt: SyncFilter, total: int, base_path: str) -> str:
    def link(offset: int, text: str) -> str:
        query = {k: v for k, v in (("dag_id", flt.dag_id), ("vendor", flt.vendor), ("state", flt.state)) if v}
        query.update(limit=str(flt.limit), offset=str(offset))
        return f'<a href="{esc(base_path)}/userattrs/syncs?{esc(urlencode(query))}">{text}</a>'

    shown = f"{flt.offset + 1:,}-{min(flt.offset + flt.limit, total):,} of {total:,}" if total else "0 of 0"
    prev = link(max(0, flt.offset - flt.limit), "&larr; newer") if flt.offset > 0 else ""
    nxt = link(flt.offset + flt.limit, "older &rarr;") if flt.offset + flt.limit < total else ""
    return f'<div class="pager"><span class="muted">{shown}</span>{prev}{nxt}</div>'


def syncs_page(
    entries: list[SyncEntry],
    total: int,
    flt: SyncFilter,
    points: list[RunPoint],
    dag_ids: list[str],
    base_path: str,
) -> str:
    with_quota = any(getattr(e, k) is not None for e in entries for k in QUOTA_KEYS)
    columns = COLUMNS + ([QUOTA_COLUMN] if with_quota else [])
    colgroup = "".join(f'<col style="width:{w}">' if w else "<col>" for _, _, w in columns)
    head = "<tr>" + "".join(f'<th class="{c}">{esc(t)}</th>' if c else f"<th>{esc(t)}</th>" for t, c, _ in columns)
    head += "</tr>"
    rows = "".join(_row(e, base_path, with_quota) for e in entries) or (
        f'<tr><td colspan="{len(columns)}" class="muted">No sync matches.</td></tr>'
    )
    failed = sum(p.status == "failed" for p in points)
    degraded = sum(p.status == "degraded" for p in points)
    flags = ", ".join(
        text for count, text in ((failed, f"{failed} failed"), (degraded, f"{degraded} degraded")) if count
    )
    body = (
        "<h1>User attribute syncs</h1>"
        f'<h2>Delivered and failed users per run and vendor <span class="muted">(newest {len(points)} runs'
        f"{': ' + flags if flags else ''})</span></h2>"
        f"{chart_svg(points)}<h2>Sync task instances</h2>{_filters(flt, dag_ids, base_path)}"
        f'<div class="table-wrap"><table id="syncs" class="syncs"><colgroup>{colgroup}</colgroup><thead>{head}</thead>'
        f"<tbody>{rows}</tbody></table></div>"
        f"{_pager(flt, total, base_path)}"
    )
    return _page("User attribute syncs", body)


# ------------------------------------------------------------------------------------------------ report page

REPLAY_SCRIPT = """
(function () {
  var button = document.getElementById("replay");
  if (!button) { return; }
  button.addEventListener("click", function () {
    var out = document.getElementById("replay-result");
    button.disabled = true;
    out.textContent = "Starting the replay run\\u2026";
    fetch(button.dataset.url, {method: "POST", credentials: "same-origin",
                               headers: {"Content-Type": "application/json"}, body: "{}"})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        out.textContent = "";
        if (!res.ok) {
          out.textContent = "Refused: " + (res.body.detail || JSON.stringify(res.body));
          button.disabled = false;
          return;
        }
        var a = document.createElement("a");
        a.href = button.dataset.runs + encodeURIComponent(res.body.dag_run_id);
        a.target = "_top";
        a.id = "replay-run";
        a.textContent = res.body.dag_run_id;
        out.append("Replay run started: ", a);
      })
      .catch(function (e) { out.textContent = "Failed: " + e; button.disabled = false; });
  });
})();
"""


def _cards(resp: ReportResponse) -> str:
    s, r = resp.sync, resp.report
    cards = [
        ("Users", f"{s.total:,}"),
        ("Delivered", f"{s.succeeded:,}"),
        ("Failed", f"{s.failed:,}"),
        ("Retryable", f"{s.retryable_users:,}"),
        ("Requests", "" if s.requests_sent is None else f"{s.requests_sent:,}"),
        ("Duration", "" if s.duration_seconds is None else f"{s.duration_seconds:.1f} s"),
        ("Users/s", esc(r.get("users_per_second"))),
        ("Try", esc(s.try_number)),
    ]
    cards += [(k, esc(r[k])) for k in QUOTA_KEYS if k in r]
    return '<div class="cards">' + "".join(f'<div class="card">{esc(k)}<b>{v}</b></div>' for k, v in cards) + "</div>"


def _reasons(resp: ReportResponse) -> str:
    if not resp.reasons:
        return '<p class="muted">No failures.</p>'
    rows = "".join(
        f'<tr><td class="n">{g.users:,}</td><td class="n">{g.count:,}</td>'
        f"<td>{'retryable' if g.retryable else 'rejected'}</td>"
        f"<td>{esc(', '.join(g.attributes))}</td><td>{esc(g.reason)}</td></tr>"
        for g in resp.reasons
    )
    return (
        f'<p class="muted">Grouped from {esc(resp.reasons_source)}.</p><table id="reasons"><thead><tr>'
        '<th class="n">Users</th><th class="n">Lines</th><th>Kind</th><th>Attributes</th><th>Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _value(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _lines(resp: ReportResponse, here: str) -> str:
    page = resp.failures
    if not page.lines:
        return '<p class="muted">No failure lines.</p>'
    rows = "".join(
        f"<tr><td>{esc(line.get('user_id'))}</td><td>{esc(line.get('attribute'))}</td>"
        f"<td>{esc(line.get('outcome'))}</td><td><code>{esc(_value(line.get('value')))}</code></td>"
        f"<td>{'yes' if line.get('retryable') else 'no'}</td><td>{esc(line.get('reason'))}</td></tr>"
        for line in page.lines
    )
    total = page.total_lines
    nav = []
    if page.offset > 0:
        previous = f"{here}&offset={max(0, page.offset - page.limit)}&limit={page.limit}"
        nav.append(f'<a href="{esc(previous)}">&larr; previous</a>')
    if total is None or page.offset + page.limit < total:
        following = f"{here}&offset={page.offset + page.limit}&limit={page.limit}"
        nav.append(f'<a href="{esc(following)}">next &rarr;</a>')
    shown = f"lines {page.offset + 1:,}-{page.offset + len(page.lines):,}" + (f" of {total:,}" if total else "")
    return (
        f'<p class="muted">From {esc(page.source)}, {shown}.</p><table id="failure-lines"><thead><tr><th>User</th>'
        "<th>Attribute</th><th>Outcome</th><th>Value</th><th>Retryable</th><th>Reason</th></tr></thead>"
        f'<tbody>{rows}</tbody></table><div class="pager">{"".join(nav)}</div>'
    )


def _replay_block(resp: ReportResponse, base_path: str, api_replay: str, can_trigger: bool) -> str:
    why = ""
    if not resp.replay_supported:
        why = "this DAG has no replay_from param"
    elif not resp.failure_file_readable:
        why = "the failure file cannot be read here"
    elif resp.retryable_lines == 0:
        why = "no retryable failure to resend (rejections are never retried)"
    elif not can_trigger:
        why = "you may not trigger this DAG"
    disabled = " disabled" if why else ""
    runs = f"{base_path}/dags/{quote(resp.sync.dag_id)}/runs/"
    note = (
        f'<span class="muted">({esc(why)})</span>'
        if why
        else (f'<span class="muted">resends the {resp.retryable_lines:,} retryable failure lines in a new run</span>')
    )
    return (
        f'<p><button class="primary" id="replay" data-url="{esc(api_replay)}" data-runs="{esc(runs)}"{disabled}>'
        f'Replay failures</button> {note}<span id="replay-result"></span></p>'
    )


DEGRADED_BADGE = ' <span class="state state-degraded">degraded</span>'


def report_page(resp: ReportResponse, base_path: str, can_trigger: bool) -> str:
    s, r = resp.sync, resp.report
    key = f"{quote(s.dag_id)}/{quote(s.run_id)}/{quote(s.task_id)}?map_index={s.map_index}"
    here = f"{base_path}/userattrs/report/{key}"
    download = f"{base_path}/userattrs/api/failures/{key}"
    chunk = f"{s.task_id}[{s.map_index}]" if s.map_index >= 0 else s.task_id
    error = f'<p class="bad">Error: {esc(r["error"])}</p>' if r.get("error") else ""
    if s.degraded:
        items = "".join(f"<li>{esc(m)}</li>" for m in s.degraded)
        error += f'<div class="banner banner-degraded" id="degraded"><b>Degraded</b><ul>{items}</ul></div>'
    file_line = (
        f"<p>Failure file: <code>{esc(r.get('failure_file'))}</code> "
        + (
            f'<a id="download" href="{esc(download)}" download>download</a>'
            if resp.failure_file_readable
            else f'<span class="muted">({esc(resp.failure_file_problem)})</span>'
        )
        + "</p>"
        if r.get("failure_file")
        else ""
    )
    body = (
        f"<h1>Sync report: {esc(chunk)}</h1>"
        f'<p>{esc(s.dag_id)} / <a href="{esc(run_url(base_path, s.dag_id, s.run_id))}" target="_top">'
        f"{esc(s.run_id)}</a>"
        f' &middot; {esc(s.vendor)} via {esc(s.conn_id)} &middot; <span class="state state-{esc(s.state)}">'
        f"{esc(s.state)}</span>"
        f"{DEGRADED_BADGE if s.degraded else ''}"
        f"{' &middot; dry run' if s.dry_run else ''}</p>"
        f"{_cards(resp)}{error}{file_line}"
        f"{_replay_block(resp, base_path, f'{base_path}/userattrs/api/replay/{key}', can_trigger)}"
        f"<h2>Failures by reason</h2>{_reasons(resp)}<h2>Failure lines</h2>{_lines(resp, here)}"
    )
    return _page(f"Sync report {chunk}", body, REPLAY_SCRIPT)


def no_report_page(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    chunk = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
    return _page(
        "No sync report",
        f"<h1>No sync report</h1><p>{esc(dag_id)} / {esc(run_id)} / {esc(chunk)} has no <code>report</code> "
        "XCom: it is not a user-attribute sync, or it has not finished a try yet.</p>",
    )
