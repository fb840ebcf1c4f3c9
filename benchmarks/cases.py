"""Cases more than one scenario runs, each in a forked child: the hook's per-user sync and the baselines."""

from __future__ import annotations

from typing import Any

from benchmarks import baselines as bl
from benchmarks.measure import Span
from benchmarks.sandbox import CTX
from benchmarks.settings import CONN_IDS, HTTP_CONN_ID


def case_hook_updates(vendor: str, count: int, overrides: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.results import UserUpdate

    hook = get_hook(CONN_IDS[vendor], **overrides)
    hook.get_conn()
    ok = failed = 0
    with Span() as span:
        for result in hook.update_users(UserUpdate(uid, values) for uid, values in bl.users(vendor, count)):
            if result.ok:
                ok += 1
            else:
                failed += 1
    hook.close()
    return span.as_dict() | {
        "users": count,
        "ok": ok,
        "failed": failed,
        "requests_sent": hook.requests_sent,
        "throttled": hook.throttled_requests,
    }


def case_baseline(name: str, vendor: str, count: int) -> dict[str, Any]:
    if name == "dlt":
        import dlt  # noqa: F401 - imported before the clock starts, as in a warm worker

    with Span() as span:
        if name == "naive":
            result = bl.naive_loop(CTX.url, vendor, bl.users(vendor, count))
        elif name == "httphook":
            result = bl.http_hook_loop(HTTP_CONN_ID, vendor, bl.users(vendor, count))
        else:
            result = bl.dlt_sink(CTX.url, vendor, bl.users(vendor, count))
    out = span.as_dict() | result.as_dict()
    out["cpu_window"] = span.seconds  # CPU shares are over the whole span (dlt: pipeline set-up included)
    out["seconds"] = result.seconds  # the baseline's own clock (dlt: the pipeline run only)
    out["ok"] = result.accepted
    out["failed"] = result.users - result.accepted
    out["requests_sent"] = result.requests
    return out
