"""Four processes, each its own hook and pacer, on one sandbox quota (issue 14): nothing lost, few 429s.

Each process is forked, as mapped chunks on workers are separate processes; they share nothing but the
sandbox's account-wide quota. Quotas are short (one second) so that a run spans several windows quickly.
"""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from airflow_provider_userattrs.sandbox import SandboxServer
from tests.conftest import VENDOR_USERS

pytestmark = pytest.mark.integration

PROCESSES = 4


def _sync(conn: str, vendor: str, first: int, count: int, extra: dict, results) -> None:
    os.environ["AIRFLOW_CONN_QUOTA_TEST"] = json.dumps({"conn_type": vendor, **json.loads(conn), "extra": extra})
    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.results import UserUpdate

    hook = get_hook("quota_test")
    updates = (UserUpdate(VENDOR_USERS[vendor](i), {"plan": "pro"}) for i in range(first, first + count))
    ok = sum(1 for result in hook.update_users(updates) if result.ok)
    results.put((ok, hook.requests_sent, hook.throttled_requests))


@pytest.mark.parametrize(
    ("vendor", "quota", "extra"),
    [
        (
            "dx",
            {"requests": 60, "window_seconds": 1.0, "kind": "sliding"},
            {"quota_requests": 60, "quota_window_seconds": 1},
        ),
        ("altatech", {"requests": 50, "window_seconds": 1.0, "kind": "fixed"}, {}),
    ],
)
def test_processes_sharing_a_quota_deliver_everything_with_few_429s(vendor, quota, extra):
    per_process = 60
    with SandboxServer(port=0) as sandbox:
        sandbox.set_faults(quota={vendor: quota})
        conn = json.dumps({"host": sandbox.url, "password": "sandbox-token"})
        ctx = multiprocessing.get_context("fork")
        results = ctx.Queue()
        processes = [
            ctx.Process(target=_sync, args=(conn, vendor, i * per_process, per_process, extra, results))
            for i in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(30)
        stats = sandbox.stats()
        users = sandbox.state(vendor)
    assert sum(ok for ok, _, _ in outcomes) == PROCESSES * per_process  # nothing lost
    assert len(users) == PROCESSES * per_process
    sent = stats["requests"]["total"]
    throttled = stats["requests"]["by_status"].get("429", 0)
    assert throttled == sum(t for _, _, t in outcomes)  # each process counted its own 429s
    assert throttled <= 0.05 * sent, stats["quota"]
