"""The benchmark process's setting: Airflow's configuration, quiet logs, warm imports and progress lines."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings

_STARTED = time.perf_counter()


def configure_environment() -> None:
    """Airflow reads its configuration when imported: an isolated home, no examples, quiet logs."""
    home = os.environ.get("USERATTRS_BENCH_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="userattrs-bench-airflow-")
        os.environ["USERATTRS_BENCH_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    os.environ["DLT_DATA_DIR"] = os.path.join(home, "dlt")
    warnings.filterwarnings("ignore")
    quiet_logging()


def quiet_logging() -> None:
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("airflow", "airflow_provider_userattrs", "urllib3", "dlt", "sqlalchemy", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


def preload() -> None:
    """Import what every case uses, once, before the children are forked."""
    import requests  # noqa: F401
    import urllib3  # noqa: F401
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

    import airflow_provider_userattrs.operators  # noqa: F401 - as a DAG file does
    from airflow_provider_userattrs.hooks import get_hook  # noqa: F401
    from airflow_provider_userattrs.results import UserUpdate  # noqa: F401
    from airflow_provider_userattrs.sync.sources import from_records, stream_sql  # noqa: F401

    quiet_logging()


def elapsed_seconds() -> float:
    """Seconds since the benchmarks were imported: the whole run's time."""
    return time.perf_counter() - _STARTED


def progress(message: str) -> None:
    print(f"[{elapsed_seconds():7.1f} s] {message}", file=sys.stderr, flush=True)
