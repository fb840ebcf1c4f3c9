"""Scenario 2: one attribute set on many User.com ids with ``hook.mass_update``, against hand-written loops."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import baselines as bl
from benchmarks.environment import progress
from benchmarks.measure import Span
from benchmarks.processes import run_child
from benchmarks.report import (
    Report,
    Section,
    Target,
    f_int,
    f_pct,
    f_rate,
    f_ratio,
    f_sec,
    hook_row,
    table,
    users_per_second,
)
from benchmarks.sandbox import CTX, Sandbox
from benchmarks.settings import CONN_IDS, MASS_CHUNK, Sizes

HEADERS = [
    *("vendor", "client", "users", "wall s", "users/s", "requests / API min", "client CPU", "sandbox CPU"),
    *("other CPU", "peak RSS MB", "x hand-written", "x naive per-user"),
]


# -- cases (each runs in a forked child) -----------------------------------------------------------------


def case_mass_update(count: int, freeze_gc: bool = False) -> dict[str, Any]:
    import gc

    from airflow_provider_userattrs.hooks import get_hook

    hook = get_hook(CONN_IDS["usercom"])
    hook.get_conn()
    if freeze_gc:
        # The objects alive now (Airflow, the provider) leave the collector's generations: what a full
        # collection still scans is the sync's own objects.
        gc.collect()
        gc.freeze()
    ok = failed = 0
    with Span() as span:
        for result in hook.mass_update("churn_risk", "high", range(1, count + 1)):
            if result.ok:
                ok += 1
            else:
                failed += 1
    hook.close()
    return span.as_dict() | {"users": count, "ok": ok, "failed": failed, "requests_sent": hook.requests_sent}


def case_mass_manual(count: int) -> dict[str, Any]:
    with Span() as span:
        result = bl.naive_mass_update_loop(CTX.url, "churn_risk", "high", range(1, count + 1), MASS_CHUNK)
    out = span.as_dict() | result.as_dict()
    out.update(ok=result.accepted, failed=result.users - result.accepted, requests_sent=result.requests)
    return out


def case_mass_naive(count: int) -> dict[str, Any]:
    work = ((index + 1, {"churn_risk": "high"}) for index in range(count))
    with Span() as span:
        result = bl.naive_loop(CTX.url, "usercom", work)
    out = span.as_dict() | result.as_dict()
    out.update(ok=result.accepted, failed=result.users - result.accepted, requests_sent=result.requests)
    return out


# -- the scenario ------------------------------------------------------------------------------------------


def _measured(sandbox: Sandbox, fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a child against a fresh sandbox, with what the sandbox counted."""
    sandbox.prepare()
    result = run_child(fn, *args)
    result["sandbox"] = sandbox.requests()
    return result


def scenario_mass_update(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    section = Section(
        "2. Mass update of one attribute on User.com (`hook.mass_update`)",
        f'`churn_risk = "high"` for n ids through `mass_update_custom_attributes/` ({MASS_CHUNK:,} ids a call), '
        "latency 0. Beside it: the same chunked calls written by hand (`requests.post` per chunk, no validation, "
        "no per-user results) and the naive per-user loop (`set_multiple_attributes/` per id) on a sample, "
        "extrapolated.",
    )
    progress(f"2. naive per-user sample, {sizes.mass_naive_sample:,} users")
    naive = _measured(sandbox, case_mass_naive, sizes.mass_naive_sample)
    naive_rate = users_per_second(naive) if "error" not in naive else 0.0
    rows: list[list[str]] = []
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for count in sizes.mass:
        progress(f"2. mass update, {count:,} ids")
        hook = _measured(sandbox, case_mass_update, count)
        progress(f"2. hand-written chunk loop, {count:,} ids")
        manual = _measured(sandbox, case_mass_manual, count)
        rows += _size_rows(count, hook, manual, naive_rate)
        results.append((count, hook, manual))
    all_exact = all(_exact(count, hook) for count, hook, _ in results)
    frozen: dict[str, Any] = {}
    if sizes.mass:
        count = max(sizes.mass)
        progress(f"2. mass update, {count:,} ids, gc.freeze() after imports")
        frozen = _measured(sandbox, case_mass_update, count, True)
        minimum = math.ceil(count / MASS_CHUNK)
        row = hook_row("usercom", "provider hook, `gc.freeze()` after imports", count, frozen, minimum, [])
        rows.append(row[:10])
    sample = naive.get("users", 0)
    rows.append(hook_row("usercom", "naive per-user loop", sample, naive, sample, [])[:10])
    section.tables.append(("", table(HEADERS, rows)))
    section.notes += _notes(sizes, naive_rate, all_exact)
    report.targets.append(
        Target(
            "Mass update: requests sent = ceil(n / 1,000), every id delivered",
            ", ".join(f"{f_int(c)} ids: {h.get('sandbox', {}).get('total', '?')} requests" for c, h, _ in results),
            all_exact,
        )
    )
    biggest = results[-1] if results else None
    if biggest and "error" not in biggest[1]:
        section.notes += _gc_note(biggest, frozen)
        section.bounds = _bounds(biggest, frozen)
    return section


def _exact(count: int, hook: dict[str, Any]) -> bool:
    """The API minimum sent and every id delivered."""
    minimum = math.ceil(count / MASS_CHUNK)
    return not ("error" in hook or hook["sandbox"].get("total") != minimum or hook.get("ok") != count)


def _size_rows(count: int, hook: dict[str, Any], manual: dict[str, Any], naive_rate: float) -> list[list[str]]:
    minimum = math.ceil(count / MASS_CHUNK)
    rate = users_per_second(hook)
    manual_rate = users_per_second(manual)
    vs_manual = f_ratio(rate / manual_rate if manual_rate and rate else None)
    vs_naive = f_ratio(rate / naive_rate if naive_rate and rate else None) + "†"
    return [
        [*hook_row("usercom", "provider hook", count, hook, minimum, [])[:10], vs_manual, vs_naive],
        hook_row("usercom", "hand-written chunk loop", count, manual, minimum, [])[:10],
    ]


def _notes(sizes: Sizes, naive_rate: float, all_exact: bool) -> list[str]:
    return [
        f"† the naive per-user loop ran on {sizes.mass_naive_sample:,} ids; its users/s is applied to every size "
        f"(at {f_rate(naive_rate)} users/s, 1,000,000 ids would take {1_000_000 / naive_rate / 60:,.0f} min)."
        if naive_rate
        else "The naive per-user sample failed.",
        "`other CPU`: the machine's CPU spent outside the client and the sandbox (as in scenario 1). "
        "API minimum: ceil(n / 1,000) calls. "
        + (
            "Every size sent exactly that many."
            if all_exact
            else "NOT every size sent exactly that many: see the table."
        ),
    ]


def _gc_note(biggest: tuple[int, dict[str, Any], dict[str, Any]], frozen: dict[str, Any]) -> list[str]:
    count, hook, _ = biggest
    if not frozen or "error" in frozen:
        return []
    gc_share = 1 - frozen["client_cpu"] / hook["client_cpu"] if hook["client_cpu"] else 0.0
    return [
        f"The `gc.freeze()` row is the same {f_int(count)}-id run with the objects alive after the imports "
        "(Airflow, the provider) moved out of the cyclic collector's reach first: the CPU it saves "
        f"({gc_share * 100:.0f} % here) is what the collector spent re-scanning them while the sync allocated."
    ]


def _bounds(biggest: tuple[int, dict[str, Any], dict[str, Any]], frozen: dict[str, Any]) -> str:
    count, hook, manual = biggest
    micro = hook["seconds"] / count * 1e6
    manual_micro = manual["seconds"] / count * 1e6 if "error" not in manual else 0.0
    gc_text = ""
    if frozen and "error" not in frozen and hook["client_cpu"]:
        gc_text = (
            f" About {(1 - frozen['client_cpu'] / hook['client_cpu']) * 100:.0f} % of that CPU is the cyclic "
            "garbage collector: every id allocates a few container objects, so full collections keep coming, "
            "and each re-scans every object Airflow's imports left alive; with those frozen first "
            f"(`gc.freeze()` row) the same run takes {f_sec(frozen['seconds'])} s instead of "
            f"{f_sec(hook['seconds'])} s."
        )
    return (
        f"Requests are few ({f_int(math.ceil(count / MASS_CHUNK))} for {f_int(count)} ids), so the time goes to "
        f"per-id work in the client: {micro:.1f} µs per id for the hook (client CPU "
        f"{f_pct(hook['client_cpu'], hook['seconds'])} of a core: validating each id, planning the window and "
        f"building one `UserResult` per id) against {manual_micro:.1f} µs for the hand-written loop, which "
        "only builds and posts the JSON and checks nothing. The sandbox used "
        f"{f_pct(hook['sandbox_cpu'], hook['seconds'])} of a core." + gc_text
    )
