"""``dag.test()`` in a process of its own, as ``airflow dags test`` runs it: Airflow reads its configuration (such
as ``[metrics]``) when that process starts, and everything the run logs (task logs, and the execution API's
logs, which ``dag.test()`` serves in the same process) is its console output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, DagRunResult


def run_dag_in_process(path: Path, dag_id: str, env: dict[str, str] | None = None) -> tuple[DagRunResult, str]:
    """Run the DAG of ``path`` with ``dag.test()`` in a new process; its result, and what it printed."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    code = "from pathlib import Path\nfrom tests.conftest import load_dag\n"
    code += f"load_dag(Path({str(path)!r}), {dag_id!r}).test()\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        return DagRunResult(run), output


def write_dag(folder: Path, dag_id: str, body: str, header: str = "") -> Path:
    """A DAG file with the operators imported, ``body`` inside ``with DAG(...)`` (indented for it)."""
    import textwrap

    source = (
        "from datetime import timedelta\n"
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_userattrs.operators import UpdateUserAttributesOperator\n"
        f"{textwrap.dedent(header)}\n"
        f"with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:\n"
        f"{textwrap.indent(textwrap.dedent(body), '    ')}\n"
    )
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    return path
