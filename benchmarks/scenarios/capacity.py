"""Scenario 5: what the sandbox itself serves on this machine, to a lean client that does nothing else.

It runs first, so that scenario 1's paragraph can compare with it; :func:`scenario_capacity_refresh` then adds
the comparison the other way, once scenario 1 is done.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks import baselines as bl
from benchmarks.environment import progress
from benchmarks.measure import Span, proc_cpu_seconds
from benchmarks.processes import run_children
from benchmarks.report import Report, Section, f_int, f_pct, f_sec, table
from benchmarks.sandbox import CTX, Sandbox
from benchmarks.settings import Sizes

HEADERS = [
    *("client", "wall s", "requests answered", "requests/s", "errors", "client CPU", "sandbox CPU"),
    "sandbox counted",
]


def case_capacity(threads: int, seconds: float) -> dict[str, Any]:
    """A lean urllib3 client for ``seconds`` (forked child)."""
    with Span() as span:
        result = bl.lean_capacity(CTX.url, threads, seconds)
    return span.as_dict() | result


def scenario_capacity(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    section = Section(
        "5. Sandbox capacity",
        "A lean client: 8 threads, one keep-alive urllib3 connection each, pre-encoded DX bodies, nothing else; "
        f"latency 0, {sizes.capacity_seconds:.0f} s. A Python client saturates its own core first, so the same 8 "
        "connections are also spread over 2 client processes: the higher rate is the most the sandbox served on "
        "this machine with its clients beside it.",
    )
    rows: list[list[str]] = []
    best = 0.0
    best_row: dict[str, Any] = {}
    for processes in (1, 2):
        row, measured = _measure(sandbox, sizes, processes)
        rows.append(row)
        if measured and measured["rps"] > best:
            best, best_row = measured["rps"], measured
    section.tables.append(("", table(HEADERS, rows)))
    if best:
        report.extras["capacity_rps"] = best
        section.bounds = (
            f"Up to {f_int(best)} requests/s. The sandbox is a threaded Python server (one interpreter: one core at "
            f"most) and used {best_row['sandbox'] * 100:.0f} % of a core at that rate, while the client processes "
            f"took {best_row['client'] * 100:.0f} %; the {os.cpu_count()} cores are shared by both, so "
            + (
                "the sandbox's own core is the limit."
                if best_row["sandbox"] >= 0.9
                else "the machine, not the sandbox alone, sets this ceiling: a client that does any work per request "
                "leaves the sandbox even more room."
            )
        )
    return section


def _measure(sandbox: Sandbox, sizes: Sizes, processes: int) -> tuple[list[str], dict[str, float] | None]:
    """8 threads over ``processes`` client processes: the row, and the rate with its CPU shares (None: error)."""
    threads = 8 // processes
    progress(f"5. sandbox capacity, {processes} process(es) x {threads} threads, {sizes.capacity_seconds:.0f} s")
    sandbox.prepare()
    sandbox_cpu = proc_cpu_seconds(sandbox.pid)
    start = time.perf_counter()
    results = run_children(case_capacity, [(threads, sizes.capacity_seconds)] * processes)
    elapsed = time.perf_counter() - start
    sandbox_cpu = proc_cpu_seconds(sandbox.pid) - sandbox_cpu
    counted = sandbox.requests().get("total", 0)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return [f"{processes} x {threads} threads", "error", errors[0][:80]], None
    seconds = max(r["seconds"] for r in results)
    answered = sum(r["requests"] for r in results)
    rps = answered / seconds
    client_cpu = sum(r["client_cpu"] for r in results)
    plural = "es" if processes > 1 else ""
    row = [
        f"lean urllib3, {processes} process{plural} x {threads} threads",
        f_sec(seconds),
        f_int(answered),
        f_int(rps),
        f_int(sum(r["errors"] for r in results)),
        f"{100 * client_cpu / seconds:.0f} % ({processes} process{plural})",
        f_pct(sandbox_cpu, elapsed),
        f_int(counted),
    ]
    return row, {"rps": rps, "client": client_cpu / seconds, "sandbox": sandbox_cpu / elapsed, "p": processes}


def scenario_capacity_refresh(section: Section, report: Report) -> Section:
    """Scenario 5 ran first; now that scenario 1 is done, its paragraph can compare with the hook."""
    rps = report.extras.get("capacity_rps")
    if not rps:
        return section
    best = 0.0
    for _, vendor, res in report.extras.get("s1_every_run", []):
        if "error" not in res and vendor in ("dx", "altatech", "usercom"):
            best = max(best, res["sandbox"].get("total", 0) / res["seconds"])
    if best:
        verdict = "so the sandbox was not what limited it" if best < 0.8 * rps else "close to the sandbox's ceiling"
        section.notes.append(
            f"The fastest per-request hook run of scenario 1 made {f_int(best)} requests/s, {f_pct(best, rps)} of "
            f"this ceiling: {verdict}."
        )
    return section
