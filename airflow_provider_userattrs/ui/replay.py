"""Replay of a sync's retryable failures: a new run of the same DAG, through Airflow's own run creation.

Design: the replay is a manual run of the DAG the sync belongs to, with ``conf`` ``{"replay_from": <failure
file>, "conn_id": <the report's connection>}``. A DAG opts in by declaring a ``replay_from`` param and passing
it to its sync operator (``replay_from="{{ params.replay_from }}"``); the example ``userattrs_warehouse_sync``
does, and then plans a single chunk that resends the file. Triggering the same DAG keeps Airflow's permissions
meaningful (replay needs the right to trigger *that* DAG) and puts the replay into the same history. The file
comes from the report on the server side, never from the request, and must lie under the failure roots.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.models.dagbag import DBDagBag
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from sqlalchemy.orm import Session

from airflow_provider_userattrs.compat import ParamValidationError
from airflow_provider_userattrs.ui.history import TaskKey

REPLAY_PARAM = "replay_from"


class ReplayRefused(Exception):
    """The replay cannot be started; the message says why and is safe to show."""


def supports_replay(dag: Any) -> bool:
    """Whether the DAG declares the ``replay_from`` param (and so knows what to do with it)."""
    params = getattr(dag, "params", None) or {}
    try:
        return REPLAY_PARAM in params
    except TypeError:
        return False


def replay_conf(report: dict[str, Any], failure_file: str) -> dict[str, Any]:
    conf: dict[str, Any] = {REPLAY_PARAM: failure_file}
    if report.get("conn_id"):
        conf["conn_id"] = report["conn_id"]
    return conf


def start_replay(
    session: Session,
    dag_bag: DBDagBag,
    key: TaskKey,
    report: dict[str, Any],
    failure_file: str,
    user_name: str,
) -> str:
    """Create the replay run (queued, manual, triggered from the UI); returns its run id."""
    dag = dag_bag.get_latest_version_of_dag(key.dag_id, session=session)
    if dag is None:
        raise ReplayRefused(f"the DAG {key.dag_id!r} is not in the metadata DB (not parsed, or removed)")
    if not supports_replay(dag):
        raise ReplayRefused(
            f"the DAG {key.dag_id!r} has no {REPLAY_PARAM!r} param: it cannot resend a failure file "
            "(see the README, 'The UI', for how a DAG supports replay)"
        )
    now = pendulum.now("UTC")
    run_id = dag.timetable.generate_run_id(run_type=DagRunType.MANUAL, run_after=now, data_interval=None)
    suffix = f"[{key.map_index}]" if key.map_index >= 0 else ""
    try:
        run = dag.create_dagrun(
            run_id=run_id,
            logical_date=None,
            data_interval=None,
            run_after=now,
            conf=replay_conf(report, failure_file),
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user_name,
            state=DagRunState.QUEUED,
            session=session,
        )
    except (ParamValidationError, ValueError) as exc:  # what Airflow's own trigger endpoint turns into a 400
        raise ReplayRefused(f"the DAG refused the replay's conf: {exc}") from None
    run.note = f"Replay of the retryable failures of {key.run_id} / {key.task_id}{suffix}"  # no note= before 3.2
    session.commit()
    return str(run.run_id)
