"""Quota-bound delivery (issue 14): N concurrent tasks sharing one vendor quota, and a deferring sync.

    python -m benchmarks.quota            # prints the tables (also run by scripts/benchmarks.sh)
    python -m benchmarks.quota --quick    # shorter runs

Each "task" is a process of its own (forked once Airflow and the provider are imported), as mapped chunks
on Celery workers are, with its own hook and its own pacer; they share nothing but the sandbox, which
enforces one account-wide quota (``quota`` setting of the sandbox: AltaTech a fixed window announced in
``X-RateLimit-*`` on every answer, DX a sliding window answered 429 + ``Retry-After``).

* **quota used** = the least time the quota allows for the requests accepted, at its sustained rate
  (``requests / window``), over the time taken (first request to last answer): the share of the account's
  capacity the sync used while it ran. A window that starts empty lets a burst through (a sliding window
  ``requests`` at once; fixed windows two budgets back to back across a boundary), so a short run can show
  a little over 100 %; a long sync cannot.
* **429s** = answers 429 / requests sent, counted by the sandbox.
* **deferral**: one ``dag.test()`` of an AltaTech sync whose budget windows are longer than ``defer_after``;
  worker-slot seconds are the report's ``duration_seconds`` (time inside the task, summed over its
  resumptions), wall seconds its ``wall_seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import baselines as bl
from benchmarks.environment import configure_environment, preload, progress, quiet_logging
from benchmarks.processes import run_child, run_children
from benchmarks.report import f_int, f_sec, table
from benchmarks.sandbox import Sandbox, set_connections
from benchmarks.settings import CONN_IDS, LABELS

DX_QUOTA = (800, 10.0)
"""DX-shaped: 800 requests per sliding 10 s (80/s; DX's real plan is 1,000 a minute)."""
ALTATECH_QUOTA = (200, 5.0)
"""AltaTech-shaped: 200 requests per fixed 5 s window (40/s), announced in X-RateLimit-* headers."""
PROCESSES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Case:
    vendor: str
    processes: int
    users: int
    declare: bool
    label: str


def least_time(vendor: str, requests: int) -> float:
    """The least time the quota allows for ``requests`` at its sustained rate (see the module docstring)."""
    quota, window = DX_QUOTA if vendor == "dx" else ALTATECH_QUOTA
    return requests * window / quota


def sandbox_quota(vendor: str) -> dict[str, Any]:
    quota, window = DX_QUOTA if vendor == "dx" else ALTATECH_QUOTA
    kind = "sliding" if vendor == "dx" else "fixed"
    return {vendor: {"requests": quota, "window_seconds": window, "kind": kind}}


def case_task(vendor: str, first: int, count: int, declare: bool) -> dict[str, Any]:
    """One task: its own hook (and pacer) sending users ``first .. first + count``."""
    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.results import UserUpdate

    overrides: dict[str, Any] = {}
    if declare:
        quota, window = DX_QUOTA if vendor == "dx" else ALTATECH_QUOTA
        overrides = {"quota_requests": quota, "quota_window_seconds": window}
    hook = get_hook(CONN_IDS[vendor], **overrides)
    hook.get_conn()
    users = list(bl.users(vendor, first + count))[first:]
    started = time.time()
    ok = sum(1 for result in hook.update_users(UserUpdate(u, v) for u, v in users) if result.ok)
    finished = time.time()
    hook.close()
    return {"ok": ok, "users": count, "started": started, "finished": finished, "requests": hook.requests_sent}


def run_case(sandbox: Sandbox, case: Case) -> dict[str, Any]:
    sandbox.prepare(quota=sandbox_quota(case.vendor))
    share = case.users // case.processes
    args = [(case.vendor, i * share, share, case.declare) for i in range(case.processes)]
    results = run_children(case_task, args, timeout=900)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"error": errors[0]}
    stats = sandbox.client.stats()["requests"]
    statuses = stats.get("by_status", {})
    sent = int(stats.get("total", 0))
    throttled = int(statuses.get("429", 0))
    accepted = sent - throttled
    taken = max(r["finished"] for r in results) - min(r["started"] for r in results)
    delivered = sum(r["ok"] for r in results)
    return {
        "users": share * case.processes,
        "delivered": delivered,
        "lost": share * case.processes - delivered,
        "sent": sent,
        "throttled": throttled,
        "taken": taken,
        "quota_used": least_time(case.vendor, accepted) / taken if taken > 0 else 0.0,
    }


DEFER_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

with DAG("bench_defer", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    UpdateUserAttributesOperator(
        task_id="push", conn_id="{conn_id}", user_id_field="user_id", defer_after={defer_after},
        records=[{{"user_id": f"user-{{i}}", "plan": "pro"}} for i in range({users})],
    )
"""


def case_deferral(users: int, defer_after: float) -> dict[str, Any]:
    """One ``dag.test()`` of an AltaTech sync that outlasts several budget windows longer than defer_after."""
    folder = Path(tempfile.mkdtemp(prefix="bench-defer-"))
    path = folder / "bench_defer.py"
    path.write_text(DEFER_DAG.format(conn_id=CONN_IDS["altatech"], defer_after=defer_after, users=users))
    bundle = {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    bundle["kwargs"] = {"path": str(folder), "refresh_interval": 0}  # type: ignore[assignment]
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([bundle])
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_defer", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.time()
    dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == "bench_defer")
    dag_run = dag.test()
    wall = time.time() - started
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter(XComModel.run_id == dag_run.run_id, XComModel.key == "report").one()
        report = row.value if isinstance(row.value, dict) else json.loads(row.value)
    return {"state": str(dag_run.state), "report": report, "wall": wall}


def render(rows: list[list[str]], headers: list[str]) -> str:
    return table(headers, rows)


@dataclass
class QuotaResults:
    """The scenario's Markdown (tables and notes) and its targets: (name, measured, met)."""

    markdown: str
    targets: list[tuple[str, str, bool]]


def run_scenario(sandbox: Sandbox, quick: bool) -> QuotaResults:
    """Every case against ``sandbox`` (already started, connections set): N tasks per vendor, then a deferral."""
    rows: list[list[str]] = []
    measured: list[tuple[Case, dict[str, Any]]] = []
    for case in _cases(quick):
        progress(f"7. quota: {case.vendor}, {case.processes} tasks, {case.label}")
        result = run_case(sandbox, case)
        if "error" in result:
            rows.append([case.vendor, case.label, str(case.processes), "error", result["error"][:80]])
            continue
        measured.append((case, result))
        rows.append(_case_row(case, result))
    headers = ["vendor", "pacing from", "tasks", "users", "time s", "quota used", "429s (share)", "lost"]
    lines = [render(rows, headers)]
    dx_q, dx_w = DX_QUOTA
    al_q, al_w = ALTATECH_QUOTA
    lines.append(
        f"\nSandbox quotas: DX {dx_q} requests per sliding {dx_w:.0f} s (429 + `Retry-After`), AltaTech {al_q} per "
        f"fixed {al_w:.0f} s window announced in `X-RateLimit-*`. One request per user; every task a separate "
        "process with its own hook and default settings (32 threads), DX connections declaring the quota "
        "(`quota_requests`/`quota_window_seconds`) except the baseline row. Quota used = the least time the quota "
        "allows for the accepted requests at its sustained rate / the time taken (a window that starts empty lets a "
        "burst through, so a short run can exceed 100 %)."
    )
    targets = _targets(measured)
    deferral_lines, deferral_target = _deferral(sandbox, quick)
    lines += deferral_lines
    if deferral_target is not None:
        targets.append(deferral_target)
    return QuotaResults("\n".join(lines), targets)


def _cases(quick: bool) -> list[Case]:
    """1, 2, 4 and 8 tasks per vendor (AltaTech paced by its headers, DX by its declared quota), then a baseline."""
    sizes = {"dx": 2400 if not quick else 600, "altatech": 1200 if not quick else 300}
    cases = [
        Case(v, n, sizes[v], v == "dx", "declared quota" if v == "dx" else "headers")
        for v in ("altatech", "dx")
        for n in PROCESSES
    ]
    cases.append(Case("dx", 4, sizes["dx"], False, "undeclared (429s only): baseline"))
    return cases


def _case_row(case: Case, result: dict[str, Any]) -> list[str]:
    share = 100 * result["throttled"] / max(1, result["sent"])
    return [
        LABELS[case.vendor],
        case.label,
        str(case.processes),
        f_int(result["users"]),
        f_sec(result["taken"]),
        f"{100 * result['quota_used']:.1f} %",
        f"{f_int(result['throttled'])} ({share:.2f} %)",
        f_int(result["lost"]),
    ]


def _targets(measured: list[tuple[Case, dict[str, Any]]]) -> list[tuple[str, str, bool]]:
    """Per vendor, over its paced runs: quota used ≥ 90 %, ≤ 2 % 429s, nothing lost."""
    targets: list[tuple[str, str, bool]] = []
    for vendor, how in (("altatech", "headers"), ("dx", "declared quota")):
        runs = [(c, r) for c, r in measured if c.vendor == vendor and c.declare == (vendor == "dx")]
        if runs:
            shares = [r["throttled"] / max(1, r["sent"]) for _, r in runs]
            met = all(r["quota_used"] >= 0.9 and r["lost"] == 0 for _, r in runs) and max(shares) <= 0.02
            text = ", ".join(
                f"{c.processes} tasks {100 * r['quota_used']:.0f} % / {100 * s:.1f} % 429s"
                for (c, r), s in zip(runs, shares, strict=True)
            )
            name = f"{LABELS[vendor]} ({how}), 1-8 tasks on one quota: quota used ≥ 90 %, ≤ 2 % 429s, 0 lost"
            targets.append((name, text, met))
    return targets


def _deferral(sandbox: Sandbox, quick: bool) -> tuple[list[str], tuple[str, str, bool] | None]:
    progress("7. quota: deferring AltaTech sync (migrating a metadata DB for dag.test first)")
    import subprocess

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    window, defer_after = (30.0, 1.0) if not quick else (20.0, 2.0)
    sandbox.prepare(quota={"altatech": {"requests": 100, "window_seconds": window, "kind": "fixed"}})
    users = 400 if not quick else 200
    deferral = run_child(case_deferral, users, defer_after, timeout=900)
    if "error" in deferral:
        return [f"\nDeferral case: error {deferral['error']}"], None
    report = deferral["report"]
    worker, wall = report["duration_seconds"], report["wall_seconds"]
    row = [
        f"{users} users, AltaTech 100 per {window:.0f} s window, defer_after {defer_after:.0f} s",
        deferral["state"],
        f"{report['succeeded']} / {report['total']}",
        str(report["deferrals"]),
        f_sec(worker),
        f_sec(wall),
        f"{100 * worker / wall:.1f} %",
    ]
    headers = ["deferring sync (dag.test)", "state", "delivered", "deferrals", "worker s", "wall s", "worker/wall"]
    lines = [
        "\n" + render([row], headers),
        "\nWorker seconds are the report's `duration_seconds` (time inside the task over its resumptions); the "
        "triggerer held the waits (`airflow dags test` runs the `DateTimeTrigger` in line).",
    ]
    met = report["succeeded"] == users and worker <= 0.1 * wall
    target = (
        "A sync outlasting quota windows longer than defer_after: worker-slot seconds ≤ 10 % of wall, all delivered",
        f"{100 * worker / wall:.1f} % ({f_sec(worker)} of {f_sec(wall)} s), "
        f"{report['succeeded']} / {users} delivered, {report['deferrals']} deferrals",
        met,
    )
    return lines, target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quota")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the scenarios)")
    parser.add_argument("--out", help="write the Markdown section here as well")
    args = parser.parse_args(argv)
    configure_environment()
    quiet_logging()
    workdir = Path(tempfile.mkdtemp(prefix="userattrs-quota-bench-"))
    sandbox = Sandbox(workdir)
    set_connections(sandbox.url, sandbox.port)
    preload()
    try:
        results = run_scenario(sandbox, args.quick)
    finally:
        sandbox.stop()
    text = (
        results.markdown
        + "\n\n"
        + "\n".join(f"- {n}: {m} ({'met' if ok else 'NOT met'})" for n, m, ok in results.targets)
    )
    print(textwrap.dedent(text))
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
