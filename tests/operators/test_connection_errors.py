"""A connection that can never work fails the task on its first try, before a row is read or a request sent.

The source is a SQL query on a connection that does not exist: had the operator read a row before checking
the vendor connection, the task would fail on that instead (and be retried, since it is not a config error).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

CASES = {
    "no token": ({"conn_type": "dx", "host": "{url}"}, {}, "password"),
    "fyno without workspace_id": (
        {"conn_type": "fyno", "host": "{url}", "password": "sandbox-token"},
        {},
        "workspace_id",
    ),
    "concurrency is not a number": (
        {"conn_type": "dx", "host": "{url}", "password": "sandbox-token", "extra": {"concurrency": "lots"}},
        {},
        "concurrency",
    ),
    "hook_params typo": (
        {"conn_type": "dx", "host": "{url}", "password": "sandbox-token"},
        {"concurency": 4},
        "concurency",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_connection_fails_the_first_try_naming_the_field(dag_harness, sandbox, monkeypatch, capfd, case):
    connection, hook_params, field = CASES[case]
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", json.dumps(connection).replace("{url}", sandbox.url))
    result = dag_harness.run(
        "broken_connection",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="broken", sql_conn_id="no_such_warehouse", sql="SELECT 1 AS user_id",
            hook_params={hook_params!r}, retries=3, retry_delay=timedelta(0),
        )
        """,
    )
    state, tries, _ = result.tasks[("push", -1)]
    assert (state, tries) == ("failed", 1)  # AirflowFailException: no retry
    log = capfd.readouterr()
    # Airflow 3.0's dag.test() logs its own masking request (the secret inside) at debug level: not ours.
    output = "\n".join(line for line in (log.out + log.err).splitlines() if "MaskSecret(" not in line)
    failure = next(line for line in output.splitlines() if "AirflowFailException:" in line)
    assert field in failure, failure
    assert "Connection Retrieved 'no_such_warehouse'" not in output  # no row was read (3.0/3.1 log rendered fields)
    assert "sandbox-token" not in output
    assert sandbox.stats()["requests"]["total"] == 0
