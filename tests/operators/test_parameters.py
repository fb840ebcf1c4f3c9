"""The operator's parameters read (``operators/parameters.py``), the verdict of a finished try and the SQL source's
missing connection: no DAG run, no vendor."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_userattrs.compat import AirflowException, AirflowFailException
from airflow_provider_userattrs.degraded import DegradedRules
from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from airflow_provider_userattrs.operators.parameters import TryParameters, keep_read, read_rendered
from airflow_provider_userattrs.operators.sql_query import SqlQuery
from airflow_provider_userattrs.operators.verdict import FinishedTry
from airflow_provider_userattrs.sync.incremental import RemovalLimit

TEMPLATE = "{{ dag_run.conf['x'] }}"


def operator(**kwargs: Any) -> UpdateUserAttributesOperator:
    return UpdateUserAttributesOperator(task_id="push", conn_id="dx_default", records=[], **kwargs)


def test_the_rendered_text_is_read_into_what_the_try_runs_with_and_the_operator_keeps_it():
    templated = ("max_failure_ratio", "dry_run", "null_values", "max_removals", "degraded_failure_ratio")
    task = operator(incremental=True, **dict.fromkeys(templated, TEMPLATE), degraded_after=TEMPLATE)
    task.max_failure_ratio, task.is_dry_run, task.null_values = "0.25", "True", " SKIP "  # as rendered
    task.max_removals, task.degraded_failure_ratio, task.degraded_after = "0.05", "None", "600"
    read = read_rendered(task)
    assert read == TryParameters(
        max_failure_ratio=0.25,
        dry_run=True,
        null_values="skip",
        removal_limit=RemovalLimit(0.05),
        degraded=DegradedRules(failure_ratio=None, after_seconds=600.0, incremental=True),
    )
    keep_read(task, read)
    assert (task.max_failure_ratio, task.is_dry_run, task.null_values) == (0.25, True, "skip")


def test_a_degraded_rule_that_renders_unreadable_fails_the_task_naming_it():
    task = operator(degraded_after=TEMPLATE)
    task.degraded_after = "-5"
    with pytest.raises(AirflowFailException, match=r"^push: degraded_after must be a number of seconds above 0"):
        read_rendered(task)


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
        ({"max_failure_ratio": 2}, "max_failure_ratio must be between 0 and 1"),
        ({"degraded_failure_ratio": 1.5}, "degraded_failure_ratio must be between 0 and 1"),
        ({"degraded_after": 0}, "degraded_after must be a number of seconds above 0"),
        ({"results_outcomes": "some"}, "results_outcomes"),
        ({"results_table": "results"}, "results_conn_id"),  # records: no sql_conn_id to default to
    ],
)
def test_a_value_given_as_it_is_fails_the_dag_when_it_cannot_be_read(given, error):
    with pytest.raises(ValueError, match=error):
        operator(**given)


def test_a_template_is_left_for_execute_and_a_data_safety_parameter_fails_without_retry():
    operator(**dict.fromkeys(("max_failure_ratio", "degraded_failure_ratio", "degraded_after"), TEMPLATE))
    with pytest.raises(AirflowFailException, match="null_values"):
        MassUpdateOperator(task_id="m", conn_id="dx_default", attribute="a", value=1, user_ids=[], null_values="x")
    with pytest.raises(AirflowFailException, match="needs incremental=True"):
        operator(max_removals=5)


def finished(error: str | None = None, failed: int = 0, *, try_number: int = 1) -> FinishedTry:
    report = {"total": 4, "failed": failed, "retryable_users": 0, "failure_file": "f.jsonl"}
    return FinishedTry(report, error, try_number=try_number, retries=1, max_failure_ratio=0.25)


def test_a_finished_try_fails_on_its_error_else_on_its_report():
    finished().conclude()
    finished(failed=1).conclude()  # 25 %: not above the ratio
    with pytest.raises(AirflowFailException, match=r"^bad credentials$"):
        finished("bad credentials").conclude()
    with pytest.raises(AirflowFailException, match="2 of 4 users failed"):
        finished(failed=2).conclude()
    retryable = FinishedTry({"total": 4, "failed": 1, "retryable_users": 1}, None, 1, 1, 0.0)
    with pytest.raises(AirflowException, match="the next try resends only them"):
        retryable.conclude()


def test_a_query_without_a_connection_fails_when_it_is_read_not_before():
    query = SqlQuery("push", None, "select 1", None, 100)
    rows = query.rows  # a segment holds the reader: nothing is checked yet
    with pytest.raises(AirflowFailException, match=r"^push: sql needs sql_conn_id"):
        rows()
