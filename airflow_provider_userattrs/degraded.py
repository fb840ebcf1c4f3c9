"""A *degraded* sync succeeded but deserves a look: it stays a success, and its report says why it is degraded.

The report's ``degraded`` key (README "The report") is the list of the rules a run tripped, empty when it is
healthy; each item is ``{"rule": <code>, "message": <what a person reads>}``. The rules and the operator
parameters that set them (``UserAttributesSyncOperator``):

* ``failed_share``: more than ``degraded_failure_ratio`` of the users failed (default 0.0: any failed user). A
  share above ``max_failure_ratio`` fails the task instead, so a value at or above it never marks a run.
* ``no_users``: the source gave no user at all (``degraded_when_empty``, default True). Not for an incremental
  sync (no change is its healthy answer) nor a replay (nothing left to resend is what a replay is for).
* ``postponed``: the vendor's quota held users back long enough that the task was deferred (``deferrals`` > 0;
  ``degraded_when_postponed``, default True).
* ``slow``: the sync took longer than ``degraded_after`` seconds, first start to end, quota waits included
  (``wall_seconds``; default None: no limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEGRADED_KEY = "degraded"
RULES = ("failed_share", "no_users", "postponed", "slow")


@dataclass(frozen=True)
class DegradedRules:
    """When a successful sync is marked degraded (module docstring)."""

    failure_ratio: float | None = 0.0
    when_empty: bool = True
    when_postponed: bool = True
    after_seconds: float | None = None
    incremental: bool = False
    replay: bool = False

    def __call__(self, report: Mapping[str, Any]) -> list[dict[str, str]]:
        """The rules ``report`` trips: the report's ``degraded`` value."""
        return degraded_reasons(report, self)


def degraded_failure_ratio(value: Any) -> float | None:
    """``degraded_failure_ratio`` as a number between 0 and 1, or None (a rendered template may be text)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"degraded_failure_ratio must be between 0 and 1 (or None), got {value!r}")
    return number


def degraded_after(value: Any) -> float | None:
    """``degraded_after`` as a positive number of seconds, or None (no limit)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    number = float(value)
    if number <= 0:
        raise ValueError(f"degraded_after must be a number of seconds above 0 (or None), got {value!r}")
    return number


def _plural(count: int, unit: str) -> str:
    return f"{count:,} {unit}" + ("" if count == 1 else "s")


def degraded_reasons(report: Mapping[str, Any], rules: DegradedRules) -> list[dict[str, str]]:
    """Which rules ``report`` trips, in the order of :data:`RULES`; empty when the run is healthy.

    A report that stopped on an ``error`` (bad credentials, too many removals) is a failure, not a degraded
    run: it trips none.
    """
    if report.get("error"):
        return []
    found: list[dict[str, str]] = []
    total, failed = int(report.get("total") or 0), int(report.get("failed") or 0)
    if rules.failure_ratio is not None and total and failed / total > rules.failure_ratio:
        found.append(
            {
                "rule": "failed_share",
                "message": f"{failed:,} of {_plural(total, 'user')} failed ({failed / total:.2%}, above "
                f"degraded_failure_ratio {rules.failure_ratio:.2%})",
            }
        )
    if rules.when_empty and total == 0 and not rules.incremental and not rules.replay:
        found.append({"rule": "no_users", "message": "the source gave no user: nothing was read"})
    deferrals = int(report.get("deferrals") or 0)
    if rules.when_postponed and deferrals:
        waited = float(report.get("wall_seconds") or 0) - float(report.get("duration_seconds") or 0)
        found.append(
            {
                "rule": "postponed",
                "message": f"the vendor's quota postponed users: deferred {_plural(deferrals, 'time')}"
                + (f", {waited:,.0f} s waiting" if waited >= 1 else ""),
            }
        )
    wall = report.get("wall_seconds")
    if rules.after_seconds is not None and wall is not None and float(wall) > rules.after_seconds:
        found.append(
            {
                "rule": "slow",
                "message": f"took {float(wall):,.0f} s, longer than degraded_after {rules.after_seconds:,.0f} s",
            }
        )
    return found


def degraded_messages(value: Any) -> list[str]:
    """What a person reads of a report's ``degraded`` value (it comes from XCom: any shape is tolerated)."""
    if not isinstance(value, list):
        return []
    messages = []
    for item in value:
        if isinstance(item, Mapping):
            text = item.get("message") or item.get("rule")
            if text:
                messages.append(str(text))
        elif isinstance(item, str) and item:
            messages.append(item)
    return messages
