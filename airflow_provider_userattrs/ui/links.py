"""The addresses of the plugin's pages, for the pages themselves and for alerts (``alerts.py``).

Nothing here imports Airflow, so that a task process (an alert) builds the same links as the API server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as _quote
from urllib.parse import urlencode

PREFIX = "/userattrs"


def quote(value: Any) -> str:
    return _quote(str(value), safe="")


def report_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The "Sync report" page of one task instance, from the API server's root."""
    return f"{PREFIX}/report/{quote(dag_id)}/{quote(run_id)}/{quote(task_id)}?map_index={map_index}"


def syncs_path(dag_id: str | None = None) -> str:
    """The sync history page, narrowed to one DAG when given."""
    return f"{PREFIX}/syncs" + (f"?{urlencode({'dag_id': dag_id})}" if dag_id else "")


def run_path(dag_id: str, run_id: str) -> str:
    """Airflow's own page of a DAG run."""
    return f"/dags/{quote(dag_id)}/runs/{quote(run_id)}"
