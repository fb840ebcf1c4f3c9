"""A quota shared by every client of the sandbox (issue 14): fixed and sliding windows, answered as each vendor does.

Real HTTP against a real server: the window tests use windows of one second and wait for window boundaries,
so each takes a second or two.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from email.utils import parsedate_to_datetime

import pytest

from airflow_provider_userattrs.sandbox import SandboxClient, SandboxServer
from airflow_provider_userattrs.sandbox.quota import Quota, QuotaCounter
from tests.sandbox.test_sandbox import GOOD, TOKEN, call

RATE_HEADERS = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def next_boundary(window: float = 1.0) -> float:
    """The start of the next fixed window, with a little margin for the clock's grain."""
    return math.floor(time.time() / window) * window + window + 0.01


def send(sandbox: SandboxServer, vendor: str, n: int) -> tuple[int, dict[str, str], object]:
    """The vendor's accepted request, for user number ``n`` (one user per request: what was applied shows)."""
    path, auth, payload = GOOD[vendor]
    body = json.loads(json.dumps(payload))
    if vendor == "altatech":
        body["user_id"] = f"u{n}"
    elif vendor == "fyno":
        body["distinct_id"] = f"d{n}"
    elif vendor == "dx":
        body["email"] = f"p{n}@example.com"
    else:
        body["ids"] = [n + 1]
    return call(sandbox, "POST", path, body, auth=auth)


def stored(sandbox: SandboxServer, vendor: str) -> int:
    state = sandbox.state(vendor)
    return len(state.get("sandboxwsid/live", {})) if vendor == "fyno" else len(state)


# -- the counter, on a made-up clock ---------------------------------------------------------------------------


def test_fixed_window_resets_at_boundaries_and_says_when():
    counter = QuotaCounter(Quota(3, 10.0, "fixed"))
    verdicts = [counter.admit(t) for t in (100.0, 101.0, 109.0, 109.5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[3].reset_at == 110.0 and verdicts[3].retry_after == pytest.approx(0.5)
    assert counter.admit(110.0).allowed  # a new window: three more, right after three at its end
    assert counter.peek(110.5).remaining == 2  # peeking counts nothing
    assert (counter.accepted, counter.throttled) == (4, 1)


def test_sliding_window_allows_at_most_n_in_any_window():
    counter = QuotaCounter(Quota(3, 10.0, "sliding"))
    assert all(counter.admit(t).allowed for t in (100.0, 101.0, 109.0))
    refused = counter.admit(109.9)
    assert not refused.allowed and refused.reset_at == 110.0 and refused.retry_after == pytest.approx(0.1)
    assert counter.admit(110.0).allowed  # the request of 100.0 has left the window [100, 110)
    refused = counter.admit(110.5)  # a fixed window would have reset at 110: 101, 109 and 110 still count
    assert not refused.allowed and refused.reset_at == 111.0
    assert counter.admit(111.0).allowed
    assert (counter.accepted, counter.throttled) == (5, 2)


@pytest.mark.parametrize(
    ("kind", "accepted", "least"),
    [("sliding", 1, 0), ("sliding", 5, 0), ("sliding", 6, 1), ("sliding", 11, 2), ("fixed", 10, 0), ("fixed", 11, 1)],
)
def test_least_time_the_quota_allows(kind, accepted, least):
    # sliding: 5 at once, 5 more a window later; fixed: 5 at a window's end and 5 at the next one's start
    assert Quota(5, 1.0, kind).least_seconds(accepted) == least


def test_quota_settings_are_checked(sandbox):
    for bad in (
        {"dx": {"requests": 0, "window_seconds": 1}},
        {"dx": {"requests": 5, "window_seconds": 0}},
        {"dx": {"requests": 5, "window_seconds": 1, "kind": "rolling"}},
        {"dx": {"requests": 5, "window_seconds": 1, "burst": 2}},
        {"dx": {"window_seconds": 1}},
        {"mailchimp": {"requests": 5, "window_seconds": 1}},
        {"requests": 5, "window_seconds": 1, "vendor": "nope"},
    ):
        with pytest.raises(ValueError):
            sandbox.set_faults(quota=bad)
    sandbox.set_faults(quota=[{"vendor": "dx", "requests": 5, "window_seconds": 60}])
    assert sandbox.stats()["faults"]["quota"] == {"dx": {"requests": 5, "window_seconds": 60.0, "kind": "fixed"}}


# -- over real HTTP ----------------------------------------------------------------------------------------------


def test_fixed_window_dx_answers_429_with_retry_after_applies_nothing_and_resets_at_the_boundary(sandbox):
    sandbox.set_faults(quota={"vendor": "dx", "requests": 5, "window_seconds": 1, "kind": "fixed"})
    wait_until(next_boundary())
    answers = [send(sandbox, "dx", n) for n in range(7)]
    assert [status for status, _, _ in answers] == [200] * 5 + [429] * 2
    assert answers[5][2] == {"ok": False, "error": "rate_limited"}
    assert answers[5][1]["Retry-After"] == "1"
    assert all(not RATE_HEADERS & set(headers) for _, headers, _ in answers)  # DX sends no budget headers
    assert stored(sandbox, "dx") == 5  # the refused requests were not applied
    wait_until(next_boundary())
    assert send(sandbox, "dx", 7)[0] == 200
    quota = sandbox.stats()["quota"]["dx"]
    assert (quota["accepted"], quota["throttled"]) == (6, 2)
    assert sandbox.stats()["requests"]["by_status"] == {"200": 6, "429": 2}


@pytest.mark.parametrize(("kind", "after_boundary"), [("fixed", 202), ("sliding", 429)])
def test_sliding_window_counts_across_fixed_boundaries(sandbox, kind, after_boundary):
    sandbox.set_faults(quota={"fyno": {"requests": 5, "window_seconds": 1, "kind": kind}})
    boundary = next_boundary()
    wait_until(boundary + 0.5)
    assert [send(sandbox, "fyno", n)[0] for n in range(5)] == [202] * 5
    wait_until(boundary + 1.1)  # a new fixed window, but only ~0.6 s after the five
    status, headers, body = send(sandbox, "fyno", 5)
    assert status == after_boundary
    if status == 429:
        assert body == {"_message": "Too many requests", "status": "error"} and headers["Retry-After"] == "1"
        wait_until(sandbox.stats()["quota"]["fyno"]["first_accepted"] + 1.01)  # the first of the five has left
        assert send(sandbox, "fyno", 6)[0] == 202


def test_altatech_budget_headers_on_every_answer_and_no_retry_after(sandbox):
    sandbox.set_faults(quota={"altatech": {"requests": 3, "window_seconds": 1}})
    wait_until(next_boundary())
    window_end = math.floor(time.time()) + 1
    answers = [send(sandbox, "altatech", n) for n in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [headers["X-RateLimit-Remaining"] for _, headers, _ in answers] == ["2", "1", "0", "0"]
    assert all(headers["X-RateLimit-Limit"] == "3" for _, headers, _ in answers)
    assert all(int(headers["X-RateLimit-Reset"]) == window_end for _, headers, _ in answers)  # Unix seconds
    assert "Retry-After" not in answers[3][1]  # AltaTech documents none
    assert answers[3][2] == {"code": 42900, "message": "rate limit exceeded"}
    path, auth, payload = GOOD["altatech"]
    status, headers, _ = call(sandbox, "GET", path, payload, auth=auth)  # even a refused method carries them
    assert status == 405 and headers["X-RateLimit-Remaining"] == "0"
    assert stored(sandbox, "altatech") == 3


def test_usercom_429_retry_after_as_an_http_date(sandbox):
    sandbox.declare_usercom_attributes(["plan"])
    sandbox.set_faults(quota={"usercom": {"requests": 2, "window_seconds": 60}}, retry_after_format="http-date")
    answers = [send(sandbox, "usercom", n) for n in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert answers[2][2] == {"detail": "You have reached a rate limit"}
    retry_at = parsedate_to_datetime(answers[2][1]["Retry-After"]).timestamp()
    assert time.time() - 1 <= retry_at <= time.time() + 61
    assert not RATE_HEADERS & set(answers[0][1])
    assert stored(sandbox, "usercom") == 2


def test_one_budget_for_every_connection_thread_and_process(sandbox):
    """Ten a minute, asked for by three threads on their own connections and by another process."""
    sandbox.set_faults(quota={"dx": {"requests": 10, "window_seconds": 60, "kind": "sliding"}})
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(first: int) -> None:
        for n in range(first, first + 4):
            status = send(sandbox, "dx", n)[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker, args=(k * 10,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other = subprocess.run(
        [sys.executable, "-c", CHILD, sandbox.url, TOKEN], check=True, capture_output=True, text=True, timeout=60
    )
    statuses += json.loads(other.stdout)
    assert sorted(statuses) == [200] * 10 + [429] * 6
    assert stored(sandbox, "dx") == 10
    assert send(sandbox, "fyno", 0)[0] == 202  # another vendor's account has its own budget (here: none)
    assert sandbox.stats()["quota"]["dx"]["throttled"] == 6


CHILD = """
import json, sys, urllib.error, urllib.request
url, token = sys.argv[1], sys.argv[2]
statuses = []
for n in range(4):
    body = json.dumps({"email": f"child{n}@example.com", "attributes": [{"name": "plan", "value": "pro"}]}).encode()
    request = urllib.request.Request(url + "/users.attributes.update", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            statuses.append(response.status)
    except urllib.error.HTTPError as error:
        statuses.append(error.code)
print(json.dumps(statuses))
"""


def test_stats_report_quota_used_for_a_benchmark(sandbox):
    sandbox.set_faults(quota={"dx": {"requests": 5, "window_seconds": 1, "kind": "sliding"}})
    began = time.time()
    assert [send(sandbox, "dx", n)[0] for n in range(6)] == [200] * 5 + [429]
    wait_until(sandbox.stats()["quota"]["dx"]["last_accepted"] + 1.01)  # all five have left the window
    assert [send(sandbox, "dx", n)[0] for n in range(6, 11)] == [200] * 5
    quota = SandboxClient(sandbox.url).stats()["quota"]["dx"]
    assert quota == sandbox.stats()["quota"]["dx"]
    assert quota["window"] == {"requests": 5, "window_seconds": 1.0, "kind": "sliding"}
    assert (quota["accepted"], quota["throttled"]) == (10, 1)
    assert began <= quota["first_accepted"] < quota["last_accepted"] <= time.time()
    assert quota["least_seconds"] == 1.0  # ten requests under 5/s sliding: at least one second first to last
    assert quota["seconds"] == pytest.approx(quota["last_accepted"] - quota["first_accepted"], abs=1e-5)
    assert 0.5 < quota["quota_used"] <= 1.0  # as fast as the quota allowed, less the test's own overheads
    sandbox.reset()
    assert sandbox.stats()["quota"] == {}  # a reset forgets the quota, as it forgets faults
