"""Read sync reports back: judge a run from its chunk reports, and print the demo's summary.

``python -m airflow_provider_userattrs.demo.summary DAG_ID [DAG_ID...]`` prints, for the latest run of
each DAG in the metadata DB, users delivered per vendor, failures grouped by reason, and the failure files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any


class UncleanRunError(RuntimeError):
    """The run delivered less than it should have; the message says what and where the details are."""


def combine(reports: Iterable[dict[str, Any] | None] | dict[str, Any]) -> dict[str, Any]:
    """One report for a whole run from its chunk reports (a missing report is a chunk that never reported)."""
    if isinstance(reports, dict):  # xcom_pull of a mapped task with a single chunk gives the value itself
        reports = [reports]
    total = succeeded = failed = retryable = missing = 0
    failures: list[dict[str, Any]] = []
    files: list[str] = []
    vendors: set[str] = set()
    for report in reports:
        if not report:
            missing += 1
            continue
        vendors.add(str(report.get("vendor")))
        total += int(report.get("total", 0))
        succeeded += int(report.get("succeeded", 0))
        failed += int(report.get("failed", 0))
        retryable += int(report.get("retryable_users", 0))
        failures.extend(report.get("failures") or [])
        if report.get("failed") and report.get("failure_file"):
            files.append(str(report["failure_file"]))
    return {
        "vendors": sorted(vendors),
        "total": total,
        "succeeded": succeeded,
        "failed": failed,
        "retryable_users": retryable,
        "chunks_without_report": missing,
        "reasons": Counter(_reason_kind(f) for f in failures).most_common(10),
        "failures": failures[:100],
        "failure_files": files,
    }


def _reason_kind(failure: dict[str, Any]) -> str:
    reason = str(failure.get("reason") or "")
    attribute = failure.get("attribute")
    user = str(failure.get("user_id"))
    generic = reason.replace(user, "<user>") if user and user != "None" else reason
    return f"{attribute}: {generic[:160]}" if attribute else generic[:160]


def judge_run(
    reports: Iterable[dict[str, Any] | None] | dict[str, Any],
    max_failure_ratio: float,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Log a run's outcome and raise :class:`UncleanRunError` when it is not clean.

    Clean: every chunk reported, no transient failure left, and rejected users within the ratio.
    """
    run = combine(reports)
    echo(render(run))
    problems = []
    if run["chunks_without_report"]:
        problems.append(f"{run['chunks_without_report']} chunks never reported (they crashed before the end)")
    if run["retryable_users"]:
        problems.append(f"{run['retryable_users']} users failed transiently: replay the failure files")
    if run["total"] and run["failed"] / run["total"] > max_failure_ratio:
        problems.append(f"{run['failed']} of {run['total']} users failed (over {max_failure_ratio:.1%})")
    if problems:
        raise UncleanRunError("; ".join(problems) + f". Failure files: {run['failure_files']}")
    return run


def render(run: dict[str, Any]) -> str:
    lines = [
        f"vendor(s) {', '.join(run['vendors']) or '-'}: {run['succeeded']:,} of {run['total']:,} users delivered, "
        f"{run['failed']:,} failed ({run['retryable_users']:,} transiently)"
    ]
    for reason, count in run["reasons"]:
        lines.append(f"  {count:>6,} x {reason}")
    for path in run["failure_files"][:5]:
        lines.append(f"  failures: {path}")
    if len(run["failure_files"]) > 5:
        lines.append(f"  ... and {len(run['failure_files']) - 5} more failure files")
    return "\n".join(lines)


def latest_reports(dag_id: str) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """State, conf and every ``report`` XCom of the latest run of ``dag_id`` (from the metadata DB)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        if run is None:
            return None, None, []
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "report"
        )
        reports = [_load(row.value) for row in rows]
        return str(run.state), json.dumps(run.conf or {}), reports


def _load(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise the latest runs of sync DAGs")
    parser.add_argument("dag_ids", nargs="+")
    args = parser.parse_args(argv)
    for dag_id in args.dag_ids:
        state, conf, reports = latest_reports(dag_id)
        print(f"\n== {dag_id}: run {state or 'not found'} (conf {conf})")
        if reports:
            print(render(combine(reports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
