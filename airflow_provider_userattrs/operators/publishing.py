"""What a try publishes besides the task's return value: the report (XCom ``report``, also when the task then
fails: the UI's history, the alert and a replay read it there) and the try's metrics (``metrics.py``), counted
from the baseline the try started from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_userattrs import metrics

REPORT_KEY = "report"


def metrics_baseline(
    context: Mapping[str, Any], folder: Any, *, dry_run: bool, continues_checkpoint: bool, resuming: bool
) -> metrics.Counts | None:
    """The counts this try started from, read before the engine runs; None when no metrics go out (none
    enabled, or a dry run).

    :param continues_checkpoint: the try continues the counts of earlier tries (an incremental try starts
        from zero).
    :param resuming: the try resumes after a deferral: its baseline is the one carried through it.
    """
    if dry_run or not metrics.metrics_enabled():
        return None
    if resuming and (carried := metrics.carried_baseline(context["ti"])):
        return carried
    return metrics.try_baseline(context, folder, continues_checkpoint=continues_checkpoint)


def publish(ti: Any, report: dict[str, Any], baseline: metrics.Counts | None) -> None:
    """Push the report, and emit the try's metrics once (also when the task then fails)."""
    ti.xcom_push(key=REPORT_KEY, value=report)
    if baseline is not None:
        metrics.emit(report, baseline)
