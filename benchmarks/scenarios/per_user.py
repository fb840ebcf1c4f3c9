"""Scenario 1: per-user updates (3 attributes per user), the hook beside the loops people write instead."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from benchmarks import baselines as bl
from benchmarks.cases import case_baseline, case_hook_updates
from benchmarks.environment import progress
from benchmarks.processes import run_child
from benchmarks.report import Report, Section, Target, f_int, f_pct, f_rate, f_ratio, hook_row, table, users_per_second
from benchmarks.sandbox import Sandbox
from benchmarks.settings import CONCURRENCY, FYNO_BATCH, LABELS, MASS_CHUNK, Sizes

BASELINES = ("naive", "httphook", "dlt")
BASELINE_NAMES = {
    "naive": "naive `requests.post` loop",
    "httphook": "`HttpHook.run()` loop",
    "dlt": "dlt `@dlt.destination` sink",
}
HEADERS = [
    *("vendor", "client", "users", "wall s", "users/s", "requests / API min", "client CPU"),
    *("sandbox CPU", "other CPU", "peak RSS MB", "x naive", "x HttpHook", "x dlt"),
]


@dataclass
class _Runs:
    """What the scenario gathers across latencies and vendors, for its notes, bounds, target and chart."""

    rates: dict[tuple[float, str, str], float] = field(default_factory=dict)
    """(latency, vendor, baseline) -> the hook's users/s over the baseline's."""
    chart: dict[float, dict[str, dict[str, float]]] = field(default_factory=dict)
    largest: dict[tuple[float, str], dict[str, Any]] = field(default_factory=dict)
    """(latency, vendor) -> the hook's run at the largest common size."""
    every_run: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    extrapolated: bool = False


def api_minimum(vendor: str, users: int) -> int:
    return math.ceil(users / FYNO_BATCH) if vendor == "fyno" else users


def scenario_per_user(sandbox: Sandbox, sizes: Sizes, report: Report, dlt_problem: str | None) -> Section:
    section = Section(
        "1. Per-user updates (3 attributes per user)",
        "Each user gets `lifetime_value` (different for every user), `vip_level` and `order_count`. The hook runs "
        f"with its defaults (`concurrency` {CONCURRENCY}, no rate limit); the baselines send one call per user, "
        "in sequence, to the same sandbox in the same run. `requests` is what the sandbox counted, beside the "
        "API minimum (one call per user; Fyno: one batch call per "
        f"{FYNO_BATCH} users, the hook's `batch_size`). CPU is the share of one core used over the wall time, "
        "by the client process (all threads), by the sandbox process and by everything else on the machine "
        "(`other`: kernel work charged to neither, and other people's processes: the machine is shared, so a "
        "large `other` marks a row measured under load).",
    )
    runs = _Runs()
    for latency in sizes.latencies:
        rows: list[list[str]] = []
        runs.chart[latency] = {}
        for vendor in bl.VENDORS:
            hook_runs = _hook_runs(sandbox, sizes, vendor, latency)
            base = _baseline_runs(sandbox, sizes, vendor, latency, dlt_problem)
            rows += _hook_rows(sizes, vendor, latency, hook_runs, base, runs)
            rows += _baseline_rows(vendor, latency, base, runs)
        rows = [row + [""] * (len(HEADERS) - len(row)) for row in rows]
        section.tables.append((f"**Sandbox latency {latency * 1000:.0f} ms**", table(HEADERS, rows)))
    section.notes += _notes(sizes, report, runs, dlt_problem)
    report.extras["s1_chart"] = runs.chart
    report.extras["s1_ratios"] = runs.rates
    report.extras["s1_results"] = runs.largest
    report.extras["s1_every_run"] = runs.every_run
    section.bounds = bounds_per_user(sizes, report)
    target = _target(sizes, runs.rates)
    if target:
        report.targets.append(target)
    return section


def _hook_runs(sandbox: Sandbox, sizes: Sizes, vendor: str, latency: float) -> list[dict[str, Any]]:
    vendor_sizes = list(sizes.per_user)
    if vendor == "dx" and latency == 0:
        vendor_sizes += list(sizes.dx_extra)
    hook_runs: list[dict[str, Any]] = []
    for count in vendor_sizes:
        progress(f"1. {vendor} hook, {count:,} users, latency {latency * 1000:.0f} ms")
        sandbox.prepare(latency=latency)
        result = run_child(case_hook_updates, vendor, count, {})
        result["sandbox"] = sandbox.requests()
        hook_runs.append(result)
    return hook_runs


def _baseline_runs(
    sandbox: Sandbox, sizes: Sizes, vendor: str, latency: float, dlt_problem: str | None
) -> dict[str, dict[str, Any] | None]:
    """Each baseline on a sample (None: dlt cannot be imported)."""
    sample = min(sizes.baseline_sample[latency], max(sizes.per_user))
    base: dict[str, dict[str, Any] | None] = {}
    for name in BASELINES:
        if name == "dlt" and dlt_problem:
            base[name] = None
            continue
        progress(f"1. {vendor} {name}, {sample:,} users, latency {latency * 1000:.0f} ms")
        sandbox.prepare(latency=latency)
        result = run_child(case_baseline, name, vendor, sample)
        result["sandbox"] = sandbox.requests()
        base[name] = result
    return base


def _hook_rows(
    sizes: Sizes,
    vendor: str,
    latency: float,
    hook_runs: list[dict[str, Any]],
    base: dict[str, dict[str, Any] | None],
    runs: _Runs,
) -> list[list[str]]:
    """The hook's rows, with its ratio over each baseline († where the baseline ran on fewer users)."""
    rows: list[list[str]] = []
    for result in hook_runs:
        count = result.get("users", 0)
        rate = users_per_second(result)
        ratios = []
        for name in BASELINES:
            other = base.get(name)
            other_rate = users_per_second(other) if other and "error" not in other else 0.0
            ratio = rate / other_rate if other_rate and rate else None
            mark = "†" if ratio is not None and other and other.get("users", 0) < count else ""
            runs.extrapolated = runs.extrapolated or bool(mark)
            ratios.append(f_ratio(ratio) + mark)
            if ratio is not None:
                runs.rates[(latency, vendor, name)] = ratio
        rows.append(hook_row(vendor, "provider hook", count, result, api_minimum(vendor, count), ratios))
        runs.every_run.append((latency, vendor, result))
        if count == max(sizes.per_user):
            runs.largest[(latency, vendor)] = result
            runs.chart[latency].setdefault(vendor, {})["hook"] = rate
    return rows


def _baseline_rows(vendor: str, latency: float, base: dict[str, dict[str, Any] | None], runs: _Runs) -> list[list[str]]:
    rows: list[list[str]] = []
    for name in BASELINES:
        other = base[name]
        if other is None:
            rows.append([LABELS[vendor], BASELINE_NAMES[name], "—", "—", "not run"])
            continue
        rows.append(hook_row(vendor, BASELINE_NAMES[name], other.get("users", 0), other, other.get("users", 0), []))
        runs.chart[latency].setdefault(vendor, {})[name] = users_per_second(other)
    return rows


def _notes(sizes: Sizes, report: Report, runs: _Runs, dlt_problem: str | None) -> list[str]:
    notes: list[str] = []
    if runs.extrapolated:
        notes.append(
            "† the baseline ran on fewer users than this row (the `users` of its own row) and its users/s is applied "
            "to this size: a sequential loop runs at a steady rate, so its users/s does not depend on the size "
            f"(samples: {', '.join(f'{v:,} users at {k * 1000:.0f} ms' for k, v in sizes.baseline_sample.items())})."
        )
    if dlt_problem:
        notes.append(f"dlt could not be imported ({dlt_problem}): its column is empty.")
    notes.append(
        "The Fyno baselines call the per-user `…/profiles/properties/set` endpoint (one call per user), as a "
        "hand-written loop does; the hook uses the batch endpoint, so its ratio mostly measures batching."
    )
    notes.append(
        "Peak RSS is the child process's high-water mark (`VmHWM`), Airflow and the provider already imported: "
        f"a child starts at the parent's RSS at fork time ({report.extras.get('parent_rss_mb', 0):,.0f} MB)."
    )
    failures = [
        f"{LABELS[v]}, {f_int(r.get('users', 0))} users at {lat * 1000:.0f} ms: {r.get('failed')} failed"
        for lat, v, r in runs.every_run
        if r.get("failed") or "error" in r
    ]
    if failures:
        notes.append("Users not delivered: " + "; ".join(failures) + ".")
    return notes


def _target(sizes: Sizes, rates: dict[tuple[float, str, str], float]) -> Target | None:
    slow = sizes.latencies[-1]
    measured = [(v, rates.get((slow, v, "naive"))) for v in bl.VENDORS]
    known = [(v, r) for v, r in measured if r is not None]
    if not known:
        return None
    return Target(
        f"Per-user updates at {slow * 1000:.0f} ms latency: hook ≥ 20x the naive loop's users/s "
        f"({max(sizes.per_user):,} users)",
        ", ".join(f"{LABELS[v]} {f_ratio(r)}" for v, r in known),
        all(r >= 20 for _, r in known),
    )


# -- what bounds it ------------------------------------------------------------------------------------------


def bounds_per_user(sizes: Sizes, report: Report) -> str:
    results: dict[tuple[float, str], dict[str, Any]] = report.extras["s1_results"]
    chart: dict[float, dict[str, dict[str, float]]] = report.extras["s1_chart"]
    parts: list[str] = []
    slow = max(sizes.latencies)
    if slow > 0:
        parts += _bounds_sequential(slow, chart)
        parts += _bounds_concurrent(slow, results)
        parts += _bounds_usercom(slow, results)
        parts += _bounds_fyno(slow, results)
    if 0.0 in sizes.latencies:
        parts += _bounds_cpu(report)
    return " ".join(parts)


def _bounds_sequential(slow: float, chart: dict[float, dict[str, dict[str, float]]]) -> list[str]:
    naive = chart.get(slow, {}).get("dx", {}).get("naive")
    if not naive:
        return []
    return [
        f"At {slow * 1000:.0f} ms a sequential client cannot pass 1 / {slow:.3f} s = {1 / slow:.0f} users/s; "
        f"the naive loop reached {f_rate(naive)} users/s on DX, the rest of each call being a new TCP "
        "connection and requests' own work (HttpHook adds a new `Session` and a connection lookup per call, "
        "dlt its extract/normalize/load steps)."
    ]


def _bounds_concurrent(slow: float, results: dict[tuple[float, str], dict[str, Any]]) -> list[str]:
    hook_ceiling = CONCURRENCY / slow
    dx = results.get((slow, "dx"))
    alta = results.get((slow, "altatech"))
    if not dx or "error" in dx:
        return []
    text = (
        f"The hook keeps {CONCURRENCY} requests in flight, a ceiling of {CONCURRENCY} / {slow:.3f} s = "
        f"{hook_ceiling:,.0f} requests/s: DX reached {f_rate(users_per_second(dx))} users/s "
        f"({f_pct(users_per_second(dx), hook_ceiling)} of it)"
    )
    if alta and "error" not in alta:
        text += f" and AltaTech {f_rate(users_per_second(alta))}"
    text += (
        f", with the client process at {f_pct(dx['client_cpu'], dx['seconds'])} of a core: the gap to the "
        "ceiling is the client's own per-request work (validation, JSON, urllib3) under the GIL."
    )
    return [text]


def _bounds_usercom(slow: float, results: dict[tuple[float, str], dict[str, Any]]) -> list[str]:
    usercom, dx = results.get((slow, "usercom")), results.get((slow, "dx"))
    if not (usercom and dx and "error" not in usercom and "error" not in dx):
        return []
    parts: list[str] = []
    uc_rate, dx_rate = users_per_second(usercom), users_per_second(dx)
    if uc_rate < 0.5 * dx_rate:
        parts.append(
            f"User.com reached only {f_rate(uc_rate)} users/s against DX's {f_rate(dx_rate)}: fewer requests "
            f"were in flight than `concurrency` allows (client CPU "
            f"{f_pct(usercom['client_cpu'], usercom['seconds'])}), which points at how its calls are "
            "scheduled, not at CPU."
        )
    sent = usercom.get("sandbox", {}).get("total", 0)
    if sent > usercom["users"]:
        parts.append(
            f"User.com sent {f_pct(sent - usercom['users'], usercom['users'])} more requests than the minimum: "
            f"in each window of {MASS_CHUNK:,} users the hook sends one mass update per (attribute, value) "
            "shared by at least 2 users (`vip_level`, `order_count`), on top of the per-user call that each "
            "user's unique `lifetime_value` needs anyway."
        )
    return parts


def _bounds_fyno(slow: float, results: dict[tuple[float, str], dict[str, Any]]) -> list[str]:
    fyno = results.get((slow, "fyno"))
    if not fyno or "error" in fyno:
        return []
    return [
        f"Fyno sends {FYNO_BATCH} users per request, so latency hardly matters: "
        f"{f_rate(users_per_second(fyno))} users/s, client CPU {f_pct(fyno['client_cpu'], fyno['seconds'])}."
    ]


def _bounds_cpu(report: Report) -> list[str]:
    every: list[tuple[float, str, dict[str, Any]]] = report.extras["s1_every_run"]
    dx0 = [r for lat, v, r in every if lat == 0 and v == "dx" and "error" not in r]
    if not dx0:
        return []
    dx = max(dx0, key=lambda r: r["users"])
    capacity = report.extras.get("capacity_rps")
    text = (
        f"Without latency the hook is bound by CPU: on DX ({f_int(dx['users'])} users, "
        f"{f_rate(users_per_second(dx))} users/s) the client process used "
        f"{f_pct(dx['client_cpu'], dx['seconds'])} of a core (a Python process gets about one core for "
        f"this work under the GIL) and the sandbox {f_pct(dx['sandbox_cpu'], dx['seconds'])}, on "
        f"{os.cpu_count()} cores shared by both."
    )
    if capacity:
        text += f" The sandbox alone serves {f_int(capacity)} requests/s (scenario 5)."
    return [text]
