"""Test-wide set-up: an isolated Airflow home with a SQLite metadata DB, and the vendor sandbox.

Airflow reads its configuration at import time, so the environment is set here, before any test module
imports airflow.
"""

from __future__ import annotations

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


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A fresh vendor sandbox on a free loopback port."""
    from airflow_provider_userattrs.sandbox import SandboxServer

    with SandboxServer(port=0) as server:
        yield server
