"""The task's verdict on a report: succeed, fail for Airflow to retry, or fail for good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_userattrs.compat import AirflowException, AirflowFailException


def ratio(value: Any) -> float:
    """``max_failure_ratio`` as a number between 0 and 1 (a rendered template may arrive as text)."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"max_failure_ratio must be between 0 and 1, got {value!r}")
    return number


def judge(report: Mapping[str, Any], *, try_number: int, retries: int, max_failure_ratio: float) -> None:
    """Fail the task when the run is not clean enough; transient failures get Airflow's retries.

    :raises AirflowException: users failed transiently and Airflow retries are left: the next try resends
        only them.
    :raises AirflowFailException: the share of failed users exceeds ``max_failure_ratio`` (no retry: a
        rejection would be rejected again).
    """
    total, failed = report["total"], report["failed"]
    if report.get("retryable_users") and try_number <= retries:
        raise AirflowException(
            f"{report['retryable_users']} users failed transiently after the HTTP retries; the next try "
            f"resends only them (failures: {report.get('failure_file')})"
        )
    share = failed / total if total else 0.0
    if share > max_failure_ratio:
        raise AirflowFailException(
            f"{failed} of {total} users failed ({share:.2%} > max_failure_ratio {max_failure_ratio:.2%}); "
            f"every failure with its reason: {report.get('failure_file')}"
        )


@dataclass(frozen=True)
class FinishedTry:
    """A try that ran to its end (not deferred), its report pushed: what the task's verdict is made of."""

    report: dict[str, Any]
    error: str | None
    """What stopped the sync when no retry can help (bad credentials, no route, too many removals)."""
    try_number: int
    retries: int
    max_failure_ratio: float

    def conclude(self) -> None:
        """Fail the task on :attr:`error`, without retry; else judge the report (:func:`judge`)."""
        if self.error is not None:
            raise AirflowFailException(self.error)
        judge(self.report, try_number=self.try_number, retries=self.retries, max_failure_ratio=self.max_failure_ratio)
