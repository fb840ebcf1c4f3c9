"""The ``userattrs`` UI plugin on the e2e stack, in headless Chromium: history page, report tab, replay.

One warehouse sync with rejections (the demo warehouse's dirty rows), one small sync whose chunk fails
transiently (the sandbox answers 503 to everything) and is given up (marked failed, as an operator would instead
of waiting for the retries), then *Replay failures* from the report page once the fault is off: the replay run
delivers the failed users and appears in the history. Screenshots: ``test-artifacts/e2e/ui-*.png``.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import pytest

from .conftest import shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SYNC = "userattrs_warehouse_sync"
SMALL_SEGMENT = (
    "user_id IN (SELECT user_id FROM userattrs_demo.user_attributes"
    " WHERE order_count > 0 AND email LIKE '%@example.com' ORDER BY user_id LIMIT 10)"
)


def report_path(run_id: str, map_index: int, task_id: str = "push_chunk") -> str:
    return f"/userattrs/report/{SYNC}/{quote(run_id, safe='')}/{task_id}?map_index={map_index}"


def wait_for_state(stack: Any, run_id: str, map_index: int, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tis = [t for t in stack.task_instances(SYNC, run_id, "push_chunk") if t["map_index"] == map_index]
        if tis and tis[0]["state"] in states:
            return str(tis[0]["state"])
        time.sleep(1)
    raise AssertionError(f"push_chunk[{map_index}] not in {states}: {stack.describe(SYNC, run_id)}")


@pytest.fixture(scope="module")
def synced(stack: Any) -> dict[str, Any]:
    """A DX warehouse sync with rejections, done through the REST API."""
    run_id = stack.trigger(SYNC, {"conn_id": "dx_default", "chunk_size": 1000})
    state = stack.wait(SYNC, run_id, timeout=300)
    reports = {
        ti["map_index"]: stack.xcom(SYNC, run_id, "push_chunk", key="report", map_index=ti["map_index"])
        for ti in stack.task_instances(SYNC, run_id, "push_chunk")
    }
    rejecting = next(i for i, r in sorted(reports.items()) if r and r["failed"])
    return {"run_id": run_id, "state": state, "reports": reports, "rejecting": rejecting}


def test_history_page_shows_the_chart_and_the_table(stack: Any, page: Any, synced: dict[str, Any]) -> None:
    answer = stack._session.get(
        f"{stack.api_url}/userattrs/api/syncs",
        params={"dag_id": SYNC, "limit": 100},
        headers={"Authorization": f"Bearer {stack.token()}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert {s["run_id"] for s in listed["syncs"]} >= {synced["run_id"]}
    page.goto(f"{stack.api_url}/plugin/userattrs-syncs")  # the nav entry's route: the page in Airflow's frame
    frame = page.frame_locator("iframe").first
    frame.locator("#sync-chart").wait_for()
    frame.locator("#syncs").get_by_text(synced["run_id"]).first.wait_for()
    assert frame.locator("#sync-chart .bar-delivered").count() >= 1
    assert frame.locator("#sync-chart .bar-failed").count() >= 1
    shot(page, "ui-01-sync-history")
    page.goto(f"{stack.api_url}/userattrs/syncs?dag_id={SYNC}")
    page.locator("#sync-chart").wait_for()
    shot(page, "ui-02-sync-history-page")


def test_report_tab_of_a_chunk_with_rejections_groups_the_reasons(
    stack: Any, page: Any, synced: dict[str, Any]
) -> None:
    run_id, index = synced["run_id"], synced["rejecting"]
    page.goto(f"{stack.api_url}/dags/{SYNC}/runs/{quote(run_id, safe='')}/tasks/push_chunk/mapped/{index}")
    page.get_by_role("tab", name=re.compile("Sync report")).or_(
        page.get_by_text("Sync report", exact=True)
    ).first.click()
    frame = page.frame_locator("iframe").first
    frame.locator("#reasons").wait_for()
    report = synced["reports"][index]
    text = frame.locator("#reasons").inner_text()
    assert "rejected" in text
    for failure in report["failures"][:3]:
        assert failure["reason"].split(":")[0] in text or failure["reason"] in frame.locator("body").inner_text()
    frame.locator("#failure-lines").wait_for()
    shot(page, "ui-03-report-tab-rejections")


def test_replay_failures_delivers_the_failed_users_and_appears_in_the_history(
    stack: Any, sandbox: Any, page: Any, synced: dict[str, Any]
) -> None:
    sandbox.reset()  # the sync above delivered these users already: start from an empty vendor
    sandbox.set_faults(error_rate=1.0, error_statuses=[503])
    try:
        run_id = stack.trigger(SYNC, {"conn_id": "dx_default", "chunk_size": 10, "segment": SMALL_SEGMENT})
        wait_for_state(stack, run_id, 0, {"up_for_retry", "failed"}, timeout=180)
        # Give up the retries, as an operator would: the chunk's report keeps its retryable failures.
        stack.api(
            "PATCH",
            f"/dags/{SYNC}/dagRuns/{quote(run_id, safe='')}/taskInstances/push_chunk/0",
            json={"new_state": "failed"},
        )
        stack.wait(SYNC, run_id, timeout=120)
    finally:
        sandbox.set_faults(error_rate=0.0)
    report = stack.xcom(SYNC, run_id, "push_chunk", key="report", map_index=0)
    assert report["retryable_users"] == report["total"] == 10, report
    emails = {f["user_id"] for f in report["failures"]}
    assert not emails & set(sandbox.state("dx")), "nothing was delivered while the fault was on"

    page.goto(stack.api_url + report_path(run_id, 0))
    page.locator("#reasons").get_by_text("retryable").first.wait_for()
    shot(page, "ui-04-report-retryable")
    with page.expect_response(lambda r: "/userattrs/api/replay/" in r.url) as answer:
        page.locator("#replay").click()
    assert answer.value.status == 201, answer.value.text()
    replay_run = answer.value.json()["dag_run_id"]
    page.locator("#replay-run").wait_for()
    shot(page, "ui-05-replay-started")

    assert stack.wait(SYNC, replay_run, timeout=240) == "success", stack.describe(SYNC, replay_run)
    assert stack.dag_run(SYNC, replay_run)["conf"]["replay_from"] == report["failure_file"]
    stored = sandbox.state("dx")
    assert emails <= set(stored), f"not delivered by the replay: {sorted(emails - set(stored))}"
    replayed = stack.xcom(SYNC, replay_run, "push_chunk", key="report", map_index=0)
    assert (replayed["total"], replayed["succeeded"]) == (10, 10), replayed

    page.goto(f"{stack.api_url}/userattrs/syncs?dag_id={SYNC}")
    page.locator("#syncs").get_by_text(replay_run).first.wait_for()
    shot(page, "ui-06-history-with-replay")
