"""Read sync reports back: judge a run from its chunk reports, and print the demo's summary.

``python -m airflow_provider_userattrs.demo.summary DAG_ID [DAG_ID...]`` prints, for the latest run of
each DAG in the metadata DB, users delivered per vendor, failures grouped by reason, and the failure files.
Every count a person reads is a count of users (as the headline's "25 failed" is), the unit said on each line;
a cause that hit several attributes of a user also says how many attribute values it hit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_userattrs.sync.quota_use import QuotaUse, run_quota_use


class UncleanRunError(RuntimeError):
    """The run delivered less than it should have; the message says what and where the details are."""


@dataclass(frozen=True)
class Cause:
    """One reason for failure, the users it hit and how many (user, attribute) pairs: one line of the summary."""

    reason: str
    count: int
    """Failure lines: (user, attribute) pairs (a user with 8 attributes refused counts 8)."""
    attributes: list[str]
    """The attributes it hit, most frequent first (a person looks there first)."""
    users: int
    """Users it hit (each record without a user id is a user of its own)."""


MAX_CAUSES_SHOWN = 20


class ReasonTally:
    """Failures counted by reason: lines, and distinct users.

    Reasons are one text per cause (the user, the attribute and the value are fields of their own), so the
    reason alone is the key; a vendor message that quotes the failing user's own id has it replaced by
    ``<user>`` so that it still groups. Users are told apart within one tally (one chunk's report or failure
    file) and summed over chunks (a run's chunks hold different users), so memory holds one chunk's failed
    users at most.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.attributes: dict[str, Counter[str]] = {}
        self.users: Counter[str] = Counter()
        """Users of tallies merged in by :meth:`update`."""
        self.seen: dict[str, set[object]] = {}
        """Users of failures added to this tally, per reason."""
        self.anonymous = 0

    def add(self, failure: Mapping[str, Any]) -> None:
        reason = _reason_key(failure)
        self.counts[reason] += 1
        self.attributes.setdefault(reason, Counter())[str(failure.get("attribute") or "")] += 1
        self.seen.setdefault(reason, set()).add(self._user(failure))

    def _user(self, failure: Mapping[str, Any]) -> object:
        user = failure.get("user_id")
        if user is not None:
            return str(user)  # ids come back from JSON: 42 and "42" are one user
        self.anonymous += 1  # a record without a user id is a user of its own
        return ("record", self.anonymous)

    def users_of(self, reason: str) -> int:
        return self.users[reason] + len(self.seen.get(reason, ()))

    def update(self, other: ReasonTally) -> None:
        self.counts.update(other.counts)
        for reason, names in other.attributes.items():
            self.attributes.setdefault(reason, Counter()).update(names)
        for reason in other.counts:
            self.users[reason] += other.users_of(reason)

    def causes(self) -> list[Cause]:
        """One :class:`Cause` per reason, the most users first."""
        # Ties keep the order in which reasons were first seen.
        ordered = sorted(self.counts, key=lambda reason: (-self.users_of(reason), -self.counts[reason]))
        return [
            Cause(
                reason,
                self.counts[reason],
                [name for name, _ in self.attributes[reason].most_common() if name],
                self.users_of(reason),
            )
            for reason in ordered
        ]


def combine(
    reports: Iterable[dict[str, Any] | None] | dict[str, Any], quota: tuple[int, float] | None = None
) -> dict[str, Any]:
    """One report for a whole run from its chunk reports (a missing report is a chunk that never reported).

    With the run's quota use (:func:`~airflow_provider_userattrs.sync.quota_use.run_quota_use`: share of the
    quota used, 429s) when the chunks paced to a quota (their reports say which), or against ``quota``
    (requests, window seconds) when given.
    """
    reports = [reports] if isinstance(reports, dict) else list(reports)
    total = succeeded = failed = retryable = missing = sampled = 0
    failures: list[dict[str, Any]] = []
    tally = ReasonTally()
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
        whole = _tally_report(report)
        sampled += not whole.counts and bool(report.get("failures_truncated"))
        if not whole.counts:
            for failure in report.get("failures") or []:
                whole.add(failure)
        tally.update(whole)
        if report.get("failed") and report.get("failure_file"):
            files.append(str(report["failure_file"]))
    run = {
        "vendors": sorted(vendors),
        "total": total,
        "succeeded": succeeded,
        "failed": failed,
        "retryable_users": retryable,
        "chunks_without_report": missing,
        "reasons": [asdict(cause) for cause in tally.causes()],
        "reasons_sampled_chunks": sampled,
        "failures": failures[:100],
        "failure_files": files,
    }
    use = run_quota_use(reports, quota)
    if use is not None:
        run.update(use.as_dict())
        run["deferrals"] = sum(int(r.get("deferrals", 0)) for r in reports if r)
    return run


def _reason_key(failure: Mapping[str, Any]) -> str:
    reason = str(failure.get("reason") or "(no reason given)")
    user = failure.get("user_id")
    if user is not None and len(str(user)) > 2:  # a short id ("7") would also match inside other numbers
        reason = reason.replace(str(user), "<user>")
    return reason[:300]


def _tally_report(report: dict[str, Any]) -> ReasonTally:
    """Every failure of a report whose ``failures`` were cut at 100, counted from its failure file (streamed).

    Empty when the sample is whole, or when the file cannot be read: the counts are then the sample's, and
    the summary says so.
    """
    tally = ReasonTally()
    if not report.get("failures_truncated") or not report.get("failure_file"):
        return tally
    try:
        from airflow_provider_userattrs.sync.storage import read_lines

        for line in read_lines(str(report["failure_file"])):
            tally.add(line)
    except Exception:  # a summary must not fail on an unreadable file; it says its counts are a sample
        return ReasonTally()
    return tally


def judge_run(
    reports: Iterable[dict[str, Any] | None] | dict[str, Any],
    max_failure_ratio: float,
    echo: Callable[[str], Any] = print,
    quota: tuple[int, float] | None = None,
) -> dict[str, Any]:
    """Log a run's outcome and raise :class:`UncleanRunError` when it is not clean.

    Clean: every chunk reported, no transient failure left, and rejected users within the ratio.
    ``quota``: see :func:`combine`.
    """
    reports = [reports] if isinstance(reports, dict) else list(reports)
    run = combine(reports, quota)
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
    if run.get("quota") is not None:
        lines.append(f"  {QuotaUse.from_dict(run).describe()}, {run.get('deferrals', 0)} deferrals")
    causes = run["reasons"]
    if causes:
        sampled = run.get("reasons_sampled_chunks")
        note = f" (counted from the first 100 failures of {sampled} chunks)" if sampled else ""
        lines.append(f"  failed users by reason, one line per cause{note}:")
    for cause in causes[:MAX_CAUSES_SHOWN]:
        lines.append("  " + _cause_line(cause))
    if len(causes) > MAX_CAUSES_SHOWN:
        lines.append(f"  ... and {len(causes) - MAX_CAUSES_SHOWN} more causes")
    for path in run["failure_files"][:5]:
        lines.append(f"  failures: {path}")
    if len(run["failure_files"]) > 5:
        lines.append(f"  ... and {len(run['failure_files']) - 5} more failure files")
    return "\n".join(lines)


def _plural(count: int, unit: str) -> str:
    return f"{count:,} {unit}" + ("" if count == 1 else "s")


def _cause_line(cause: Mapping[str, Any]) -> str:
    """``12 users: <reason>  [attributes] (96 attribute values)``: users first, the unit always said."""
    users = int(cause.get("users", cause["count"]))  # a summary saved before users were counted
    names = cause["attributes"]
    where = f"  [{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}]" if names else ""
    values = f" ({_plural(cause['count'], 'attribute value')})" if cause["count"] != users else ""
    return f"{_plural(users, 'user'):>12}: {cause['reason']}{where}{values}"


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
