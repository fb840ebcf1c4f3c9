"""A sync killed with SIGKILL mid-way, then run again: the final state is complete, and the second run
resends at most the chunk that was in flight."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERS, CHUNK, CONCURRENCY = 3000, 200, 8


class _TaskInstance:
    """The little of a task instance the operator reads (the task runner provides the real one)."""

    def __init__(self, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "killed", "run-1", "push", -1
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _operator() -> UpdateUserAttributesOperator:
    records = [{"email": f"k{i}@example.com", "n": str(i)} for i in range(USERS)]
    return UpdateUserAttributesOperator(
        task_id="push",
        conn_id="dx_default",
        user_id_field="email",
        records=records,
        checkpoint_every=CHUNK,
        hook_params={"concurrency": CONCURRENCY},
    )


def _run(try_number: int, result_path: str | None = None) -> None:
    ti = _TaskInstance(try_number)
    # No task_state_store in this context: the operator falls back to its object-storage checkpoint,
    # which, like the store, outlives the killed process.
    report = _operator().execute({"ti": ti})
    if result_path:
        with open(result_path, "w") as handle:
            json.dump(report, handle)


def test_sigkill_mid_sync_then_rerun_completes_without_resending_settled_chunks(
    sandbox, tmp_path, monkeypatch, airflow_db
):
    sandbox.set_faults(latency=0.004)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DX_DEFAULT",
        json.dumps({"conn_type": "dx", "host": sandbox.url, "password": "sandbox-token"}),
    )
    monkeypatch.setenv("USERATTRS_FAILURE_PATH", f"file://{tmp_path / 'failures'}")
    child = multiprocessing.get_context("fork").Process(target=_run, args=(1,))
    child.start()
    deadline = time.monotonic() + 60
    while sandbox.stats()["requests"]["total"] < USERS // 3:
        assert time.monotonic() < deadline and child.is_alive()
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    first = sandbox.stats()["requests"]["total"]
    assert 0 < first < USERS

    sandbox.set_faults()
    out = tmp_path / "report.json"
    _run(2, str(out))
    report = json.loads(out.read_text())
    assert (report["total"], report["succeeded"], report["failed"]) == (USERS, USERS, 0)
    assert len(sandbox.state("dx")) == USERS
    resent = sandbox.stats()["requests"]["total"] - USERS
    # only the chunk in flight at the kill (plus the requests then on the wire) went twice
    assert 0 <= resent <= CHUNK + CONCURRENCY, resent
