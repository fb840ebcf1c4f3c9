"""The operator's parameters read: checked as given when the DAG is parsed, and read again once a template
rendered them, into what one try runs with (:class:`TryParameters`).

A value given as it is (not a template) that cannot be read fails the DAG's parsing, naming the parameter: the
mistake shows among the DAG's import errors, not in a task hours later. A template (or an XComArg) is read once
rendered, in ``execute``: what cannot be read then fails the task before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.config import truthy
from airflow_provider_userattrs.degraded import DegradedRules, degraded_after, degraded_failure_ratio
from airflow_provider_userattrs.operators.safety import checked_now, null_values_mode, removal_limit
from airflow_provider_userattrs.operators.sync_task import SyncTask
from airflow_provider_userattrs.operators.verdict import ratio
from airflow_provider_userattrs.sync.incremental import RemovalLimit
from airflow_provider_userattrs.sync.results_table import (
    check_results_table,
    results_connection,
    results_outcomes_mode,
)


@dataclass(frozen=True)
class TryParameters:
    """What one try runs with, read from the rendered parameters (a template renders text: ``"0.05"``, ``"True"``)."""

    max_failure_ratio: float
    dry_run: bool
    null_values: str
    removal_limit: RemovalLimit | None
    degraded: DegradedRules


def check_given(task: SyncTask) -> None:
    """Check each parameter given as it is, when the DAG is parsed; a template is checked once rendered.

    :raises ValueError: a value that cannot be read (``AirflowFailException`` for ``null_values`` and
        ``max_removals``, as when they are rendered: ``safety.py``).
    """
    if not isinstance(task.max_failure_ratio, str):
        ratio(task.max_failure_ratio)
    if checked_now(task.null_values):
        null_values_mode(task.null_values)
    if checked_now(task.max_removals):
        removal_limit(task.max_removals, incremental=task.incremental)
    if task.checkpoint_every < 1:
        raise ValueError("checkpoint_every must be at least 1")
    _check_results_given(task)
    _check_degraded_given(task)


def _check_results_given(task: SyncTask) -> None:
    """``results_outcomes``, ``results_table`` and its connection (``sync/results_table.py``)."""
    if checked_now(task.results_outcomes):
        results_outcomes_mode(task.results_outcomes)
    if task.results_table and checked_now(task.results_table):
        check_results_table(task.results_table)
    results_connection(task.results_table, task.results_conn_id, task.sql_conn_id)


def _check_degraded_given(task: SyncTask) -> None:
    """``degraded_failure_ratio`` and ``degraded_after`` (``degraded.py``)."""
    if checked_now(task.degraded_failure_ratio):
        degraded_failure_ratio(task.degraded_failure_ratio)
    if checked_now(task.degraded_after):
        degraded_after(task.degraded_after)


def read_rendered(task: SyncTask) -> TryParameters:
    """The rendered parameters, read.

    :raises ValueError: ``max_failure_ratio`` is not a number between 0 and 1.
    :raises AirflowFailException: ``null_values``, ``max_removals`` or a ``degraded_*`` parameter cannot be read
        (a retry would render the same value).
    """
    return TryParameters(
        max_failure_ratio=ratio(task.max_failure_ratio),
        dry_run=truthy(task.is_dry_run),
        null_values=null_values_mode(task.null_values),
        removal_limit=removal_limit(task.max_removals, incremental=task.incremental),
        degraded=degraded_rules(task),
    )


def keep_read(task: SyncTask, read: TryParameters) -> None:
    """The operator keeps the values read in place of the rendered text: its sources read ``null_values``
    (``segment``), and whatever reads the task after its try sees what the try ran with."""
    task.max_failure_ratio = read.max_failure_ratio
    task.is_dry_run = read.dry_run
    task.null_values = read.null_values


def degraded_rules(task: SyncTask) -> DegradedRules:
    """When this run is degraded (``degraded.py``), from the rendered parameters.

    :raises AirflowFailException: ``degraded_failure_ratio`` or ``degraded_after`` cannot be read.
    """
    try:
        failure_ratio = degraded_failure_ratio(task.degraded_failure_ratio)
        after = degraded_after(task.degraded_after)
    except ValueError as exc:
        raise AirflowFailException(f"{task.task_id}: {exc}") from None
    return DegradedRules(
        failure_ratio=failure_ratio,
        when_empty=bool(task.degraded_when_empty),
        when_postponed=bool(task.degraded_when_postponed),
        after_seconds=after,
        incremental=bool(task.incremental),
        replay=bool(task.replay_from),
    )
