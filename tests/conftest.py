"""Test-wide set-up: an isolated Airflow home with a SQLite metadata DB, and the vendor sandbox.

Airflow reads its configuration at import time, so the environment is set here, before any test module
imports airflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="userattrs-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{Path(os.environ['AIRFLOW_HOME']) / 'airflow.db'}"
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB, created once per test session (``dag.test()`` needs one)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
        marker.touch()
    return home


def _postgres_available() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the local PostgreSQL test database; skips (or fails in CI) where it is absent."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("USERATTRS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"USERATTRS_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    return "postgresql://postgres@127.0.0.1:5432/test"


MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}


def _mariadb_available() -> str | None:
    try:
        import mysql.connector

        mysql.connector.connect(**MARIADB, connection_timeout=3).close()
    except Exception as exc:
        return f"MariaDB at 127.0.0.1:3306 is not reachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def mariadb_server() -> dict[str, object]:
    """Where the local MariaDB server answers (root, no password; ``scripts/start-mariadb.sh`` starts it);
    skips (or fails in CI) where it is absent."""
    problem = _mariadb_available()
    if problem:
        if os.environ.get("USERATTRS_REQUIRE_MARIADB") == "1":
            pytest.fail(f"USERATTRS_REQUIRE_MARIADB=1 but {problem}")
        pytest.skip(problem)
    return dict(MARIADB)


SANDBOX_USERCOM_ATTRIBUTES = (
    # what the hook, operator and reliability tests send to User.com
    *("churn_risk", "fine", "gone", "n", "ok_attribute", "plan", "score", "tier", "vip"),
    # what the example DAGs send (tests/dags): the mass update's default attribute; the demo warehouse's
    # columns are added by the fixture (demo.segments.SYNC_ATTRIBUTES)
    "churn_risk_flag",
)
"""Custom attributes that exist in the sandbox's User.com app: User.com refuses any other, as does the sandbox."""


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A fresh vendor sandbox on a free loopback port, its User.com app holding the suite's attributes."""
    from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES
    from airflow_provider_userattrs.sandbox import SandboxServer

    with SandboxServer(port=0, usercom_attributes=(*SANDBOX_USERCOM_ATTRIBUTES, *SYNC_ATTRIBUTES)) as server:
        yield server


VENDOR_USERS = {
    "altatech": lambda i: f"user-{i}",
    "fyno": lambda i: f"distinct-{i}",
    "dx": lambda i: f"person{i}@example.com",
    "usercom": lambda i: i + 1,
}


def sandbox_connections(url: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values pointing every vendor's default connection at a sandbox."""
    conns = {}
    for vendor in VENDOR_USERS:
        conn: dict[str, object] = {"conn_type": vendor, "host": url, "password": "sandbox-token"}
        conn["extra"] = {"backoff_base": 0.01, "backoff_max": 0.05}
        if vendor == "fyno":
            conn["extra"] = {**conn["extra"], "workspace_id": "sandboxwsid"}  # type: ignore[dict-item]
        conns[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"] = json.dumps(conn)
    return conns


class DagRunResult:
    """What a ``dag.test()`` run left in the metadata DB: states, tries and XComs."""

    def __init__(self, dag_run) -> None:
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        self.state = str(dag_run.state)
        self.run_id = dag_run.run_id
        with create_session() as session:
            tis = session.query(TaskInstance).filter(TaskInstance.run_id == dag_run.run_id).all()
            self.tasks = {
                (ti.task_id, ti.map_index): (str(ti.state), ti.try_number, ti.rendered_map_index) for ti in tis
            }
            rows = session.query(XComModel).filter(XComModel.run_id == dag_run.run_id).all()
            self.xcoms = {(r.task_id, r.map_index, r.key): r.value for r in rows}

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1):
        value = self.xcoms.get((task_id, map_index, key))
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def task_state(self, task_id: str, map_index: int = -1) -> str:
        return self.tasks[(task_id, map_index)][0]


class DagHarness:
    """Writes a DAG file into a temporary DAGs folder and runs it for real with ``dag.test()``.

    ``dag.test()`` in Airflow 3 parses the DAG from its bundle, so the DAG must live in a file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, dag_id: str, body: str, conf: dict | None = None, header: str = "") -> DagRunResult:
        import textwrap

        source = (
            "from datetime import timedelta\n"
            "import pendulum\n"
            "from airflow.sdk import DAG, task\n"
            "from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator\n"
            f"{textwrap.dedent(header)}\n"
            f"with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:\n"
            f"{textwrap.indent(textwrap.dedent(body), '    ')}\n"
        )
        path = self.folder / f"{dag_id}.py"
        path.write_text(source)
        return run_dag_file(path, dag_id, conf)


def load_dag(path: Path, dag_id: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"dagfile_{dag_id}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)


def run_dag_file(path: Path, dag_id: str, conf: dict | None = None) -> DagRunResult:
    return DagRunResult(load_dag(path, dag_id).test(run_conf=conf))


def use_dags_folder(monkeypatch, folder: Path) -> None:
    """Point the default DAG bundle at ``folder`` (the bundle's path is fixed when Airflow starts)."""
    bundle = {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    bundle["kwargs"] = {"path": str(folder), "refresh_interval": 0}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))


@pytest.fixture
def dag_harness(tmp_path, monkeypatch, airflow_db, sandbox) -> DagHarness:
    """A DAGs folder of its own, the four default connections on the sandbox, failure files in tmp."""
    folder = tmp_path / "dags"
    folder.mkdir()
    use_dags_folder(monkeypatch, folder)
    monkeypatch.setenv("USERATTRS_FAILURE_PATH", f"file://{tmp_path / 'failures'}")
    for name, value in sandbox_connections(sandbox.url).items():
        monkeypatch.setenv(name, value)
    return DagHarness(folder)
