"""Faults at the vendor, through the operators in a real Airflow run: the final state and the counts are exact."""

from __future__ import annotations

import json
import socket
import time
from email.utils import formatdate

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERS = 80
RECORDS = {
    "dx": repr([{"email": f"f{i}@example.com", "tier": f"t{i % 7}", "n": str(i)} for i in range(USERS)]),
    "fyno": repr([{"distinct_id": f"f{i}", "tier": f"t{i % 7}", "n": i} for i in range(USERS)]),
    "usercom": repr([{"id": i + 1, "tier": f"t{i % 7}", "n": i} for i in range(USERS)]),
}
ID_FIELD = {"dx": "email", "fyno": "distinct_id", "usercom": "id"}


def expected_state(vendor: str) -> dict:
    if vendor == "dx":
        return {f"f{i}@example.com": {"tier": f"t{i % 7}", "n": str(i)} for i in range(USERS)}
    if vendor == "fyno":
        return {f"f{i}": {"tier": f"t{i % 7}", "n": i} for i in range(USERS)}
    return {str(i + 1): {"tier": f"t{i % 7}", "n": i} for i in range(USERS)}


def stored(sandbox, vendor: str) -> dict:
    state = sandbox.state(vendor)
    return state.get("sandboxwsid/live", {}) if vendor == "fyno" else state


SCENARIOS = {
    "429 storm, Retry-After seconds": {
        "script": [{"status": 429, "retry_after": "1"}] * 4 + [{"status": 429, "retry_after": "0"}] * 20
    },
    "429, Retry-After HTTP date": {"script": "http-date"},
    "5xx burst": {"script": [{"status": 503}] * 8 + [{"status": 502}] * 4 + [{"status": 504}] * 4},
    "answers slower than the read timeout": {"faults": {"slow_rate": 0.05, "slow_seconds": 1.2, "seed": 1}},
    "connections reset mid-answer": {"faults": {"reset_rate": 0.15, "seed": 2}},
    "connections dropped": {"faults": {"drop_rate": 0.15, "seed": 3}},
    "30% mixed faults": {
        "faults": {
            "error_rate": 0.1,
            "drop_rate": 0.05,
            "reset_rate": 0.05,
            "throttle_rate": 0.1,
            "retry_after": 0,
            "garbage_rate": 0.0,
            "seed": 4,
        }
    },
}


CASES = [("dx", scenario) for scenario in SCENARIOS] + [
    (vendor, scenario) for vendor in ("fyno", "usercom") for scenario in ("5xx burst", "30% mixed faults")
]


@pytest.mark.parametrize(("vendor", "scenario"), CASES)
def test_faults_end_in_the_expected_state_with_exact_counts(dag_harness, sandbox, vendor, scenario):
    setup = SCENARIOS[scenario]
    if setup.get("script") == "http-date":
        sandbox.script([{"status": 429, "retry_after": formatdate(time.time() + 1, usegmt=True)}] * 3)
    elif "script" in setup:
        sandbox.script(setup["script"])
    if "faults" in setup:
        sandbox.set_faults(**setup["faults"])
    result = dag_harness.run(
        f"faults_{vendor}_{abs(hash(scenario)) % 10**6}",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="{vendor}_default", user_id_field="{ID_FIELD[vendor]}",
            records={RECORDS[vendor]}, checkpoint_every=40, retries=2, retry_delay=timedelta(0),
            hook_params={{"max_attempts": 10, "read_timeout": 0.5, "concurrency": 8, "batch_size": 20}},
        )
        """,
    )
    report = result.xcom("push")
    assert result.state == "success", (scenario, result.xcom("push", key="report"))
    assert (report["total"], report["succeeded"], report["failed"]) == (USERS, USERS, 0)
    sandbox.set_faults()
    assert stored(sandbox, vendor) == expected_state(vendor)


def test_connection_refused_is_reported_retryable_with_exact_counts(dag_harness, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    conn = {"conn_type": "dx", "host": f"http://127.0.0.1:{port}", "password": "sandbox-token"}
    monkeypatch.setenv("AIRFLOW_CONN_DEAD", json.dumps(conn))
    result = dag_harness.run(
        "refused",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="dead", user_id_field="email", records={
            RECORDS["dx"][:2000] + "]" if False else RECORDS["dx"]
        },
            hook_params={{"max_attempts": 2, "backoff_base": 0.01, "connect_timeout": 0.5}},
        )
        """,
    )
    assert result.task_state("push") == "failed"
    report = result.xcom("push", key="report")
    assert (report["total"], report["succeeded"], report["failed"], report["retryable_users"]) == (
        USERS,
        0,
        USERS,
        USERS,
    )
    assert all(f["retryable"] and "Connection refused" in f["reason"] for f in report["failures"])
    assert report["failures_truncated"] is True and len(report["failures"]) == 100  # 80 users x 2 attributes
