"""Every hook against the vendor sandbox on a real port: real HTTP, real retries, real state."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_userattrs.hooks import VendorAuthError, get_hook
from airflow_provider_userattrs.results import Outcome, UserUpdate

pytestmark = pytest.mark.integration

TOKEN = "sandbox-token"
WORKSPACE = "sandboxwsid"


@pytest.fixture
def connect(sandbox, monkeypatch):
    """Hook factory on connections pointing at the sandbox."""

    def make(conn_type: str, token: str = TOKEN, **hook_kwargs):
        conn = {"conn_type": conn_type, "host": sandbox.url, "password": token}
        if conn_type == "fyno":
            conn["extra"] = {"workspace_id": WORKSPACE, "version": "live"}
        conn_id = f"it_{conn_type}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        hook_kwargs.setdefault("backoff_base", 0.01)
        hook_kwargs.setdefault("backoff_max", 0.05)
        return get_hook(conn_id, **hook_kwargs)

    return make


def requests_received(sandbox) -> int:
    return sandbox.stats()["requests"]["total"]


USERS = {
    "altatech": [f"user-{i}" for i in range(50)],
    "fyno": [f"distinct-{i}" for i in range(50)],
    "dx": [f"person{i}@example.com" for i in range(50)],
    "usercom": list(range(1, 51)),
}


def state_of(sandbox, vendor: str) -> dict:
    state = sandbox.state(vendor)
    if vendor == "fyno":  # keyed by workspace/version
        (users,) = [v for k, v in state.items() if WORKSPACE in k and "live" in k]
        return users
    if vendor == "usercom":
        return {int(k): v for k, v in state.items()}
    return state


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_update_many_users_lands_in_the_vendor_state(connect, sandbox, vendor):
    hook = connect(vendor)
    updates = [UserUpdate(uid, {"plan": "pro" if i % 2 else "free", "score": i}) for i, uid in enumerate(USERS[vendor])]
    results = list(hook.update_users(updates))
    assert len(results) == 50 and all(r.ok for r in results), [r.failures for r in results if not r.ok][:3]
    state = state_of(sandbox, vendor)
    for i, uid in enumerate(USERS[vendor]):
        expected_score = str(i) if vendor == "dx" else i
        assert state[uid]["plan"] == ("pro" if i % 2 else "free")
        assert state[uid]["score"] == expected_score
    sent = requests_received(sandbox)
    assert sent == hook.requests_sent
    minimum = {"altatech": 50, "dx": 50, "fyno": 1, "usercom": 50}[vendor]
    assert sent == minimum  # usercom: every score is unique, so each user's call carries its plan too
    hook.close()
    assert hook.requests_sent == sent  # what the hook did is still said once its client is closed


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_mass_update(connect, sandbox, vendor):
    hook = connect(vendor, mass_update_chunk_size=20, batch_size=20)
    results = list(hook.mass_update("churn_risk", "high", USERS[vendor]))
    assert len(results) == 50 and all(r.ok for r in results)
    state = state_of(sandbox, vendor)
    assert all(state[uid]["churn_risk"] == "high" for uid in USERS[vendor])
    expected = {"altatech": 50, "dx": 50, "fyno": 3, "usercom": 3}[vendor]
    assert requests_received(sandbox) == expected


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_bad_token_fails_fast_without_retries_or_leaks(connect, sandbox, vendor, caplog):
    secret = "wrong-token-that-must-never-leak-123"
    hook = connect(vendor, token=secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(VendorAuthError) as exc:
        list(hook.update_users([UserUpdate(USERS[vendor][0], {"a": "b"})]))
    assert requests_received(sandbox) == 1
    assert secret not in str(exc.value) and secret not in repr(exc.value)
    assert secret not in caplog.text
    ok, message = hook.test_connection()
    assert not ok and secret not in message


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_test_connection_succeeds_and_changes_nothing(connect, sandbox, vendor):
    ok, message = connect(vendor).test_connection()
    assert ok, message
    assert not any(sandbox.state(vendor).values()) or (
        vendor == "fyno"
        and not any(any(v.values()) if isinstance(v, dict) else v for v in sandbox.state(vendor).values())
    )


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_transient_faults_are_retried_until_delivered(connect, sandbox, vendor):
    sandbox.script([{"status": 503}, {"status": 429, "retry_after": "0"}, {"drop": True}, {"status": 502}])
    hook = connect(vendor, max_attempts=6, concurrency=1)
    result = hook.update_user(USERS[vendor][0], {"tier": "gold"})
    assert result.ok, result.failures
    assert state_of(sandbox, vendor)[USERS[vendor][0]]["tier"] == "gold"
    assert requests_received(sandbox) == 5


def test_dx_null_removes_and_unknown_users_are_rejected(connect, sandbox):
    hook = connect("dx")
    assert hook.update_user("ann@example.com", {"Region": "EU", "Team": "core"}).ok
    assert hook.update_user("ann@example.com", {"Region": None}).ok
    assert state_of(sandbox, "dx")["ann@example.com"] == {"Team": "core"}
    result = hook.update_user("ghost@example.invalid", {"Team": "core"})
    assert result.results[0].outcome is Outcome.REJECTED and "user_not_found" in result.results[0].reason


def test_fyno_null_unsets(connect, sandbox):
    hook = connect("fyno")
    assert hook.update_user("d1", {"plan": "pro", "trial": True}).ok
    assert hook.update_user("d1", {"trial": None}).ok
    assert state_of(sandbox, "fyno")["d1"] == {"plan": "pro"}


def test_usercom_unknown_ids_are_isolated_and_the_rest_delivered(connect, sandbox):
    sandbox.register_unknown_users("usercom", [13, 37])
    hook = connect("usercom", mass_update_chunk_size=16)
    results = {r.user_id: r for r in hook.mass_update("vip", True, range(1, 65))}
    failed = sorted(uid for uid, r in results.items() if not r.ok)
    assert failed == [13, 37]
    assert all(not results[uid].retryable for uid in failed)
    state = state_of(sandbox, "usercom")
    assert all(state[uid]["vip"] is True for uid in range(1, 65) if uid not in (13, 37))
    assert 13 not in state and 37 not in state
    # User.com names the unknown ids: each bad chunk costs one resend, not a bisection
    assert requests_received(sandbox) == 4 + 2


def test_altatech_fail_update_is_reported_per_property(connect, sandbox):
    hook = connect("altatech")
    result = hook.update_user("u1", {"id": "forbidden", "vip": "gold"})
    outcomes = {r.attribute: r.outcome for r in result.results}
    assert outcomes == {"id": Outcome.REJECTED, "vip": Outcome.DELIVERED}


def test_rate_limited_vendor_is_not_stormed(connect, sandbox):
    sandbox.set_faults(rate_limit=20)
    hook = connect("dx", concurrency=16)
    updates = [UserUpdate(f"p{i}@example.com", {"a": "1"}) for i in range(60)]
    results = list(hook.update_users(updates))
    assert all(r.ok for r in results)
    stats = sandbox.stats()["requests"]
    throttled = stats["by_status"].get("429", 0)
    # The adaptive throttle backs off: far fewer 429s than a client that ignores them would collect.
    assert throttled < 60, stats


@pytest.mark.parametrize("shape", ["operations", "results", "batch", "request_id"])
def test_fyno_batch_answers_of_every_shape_deliver_exactly_what_was_applied(connect, sandbox, shape):
    sandbox.set_answer_shapes(fyno_batch=shape)
    sandbox.register_unknown_users("fyno", ["d3"])  # the sandbox refuses this item of the batch
    hook = connect("fyno", batch_size=6)
    results = {r.user_id: r for r in hook.update_users(UserUpdate(f"d{i}", {"plan": "pro"}) for i in range(6))}
    applied = set(state_of(sandbox, "fyno"))
    assert applied == {f"d{i}" for i in range(6)} - {"d3"}
    delivered = {u for u, r in results.items() if r.ok}
    # Every shape that says how each item went delivers exactly what was applied; an answer that only says
    # "accepted" (request_id) is the vendor's documented acceptance, and its refusals stay invisible.
    assert delivered == (applied | {"d3"} if shape == "request_id" else applied)
    assert all(r.retryable for u, r in results.items() if u not in delivered)


def test_dx_updated_false_for_an_unchanged_value_is_not_counted_delivered(connect, sandbox):
    sandbox.set_answer_shapes(dx_updated="changed")
    hook = connect("dx")
    assert hook.update_user("a@example.com", {"Team": "core"}).ok
    (again,) = hook.update_user("a@example.com", {"Team": "core"}).results
    assert again.outcome is Outcome.FAILED and again.retryable and "updated: false" in again.reason


@pytest.mark.parametrize("only", ["PUT", "POST"])
def test_usercom_mass_update_works_whichever_method_the_account_takes(connect, sandbox, only):
    sandbox.declare_usercom_attributes(["tier"])
    sandbox.set_answer_shapes(usercom_mass_method=only)
    hook = connect("usercom", mass_update_chunk_size=10, concurrency=1)
    results = list(hook.mass_update("tier", "gold", range(1, 31)))
    assert all(r.ok for r in results) and set(state_of(sandbox, "usercom")) == set(range(1, 31))
    refused = sum(n for status, n in sandbox.stats()["requests"]["by_status"].items() if status == "405")
    assert refused == (1 if only == "PUT" else 0)  # one 405, then the method is kept


def test_a_wrong_base_path_stops_the_sync_at_once_naming_the_url(sandbox, monkeypatch):
    from airflow_provider_userattrs.errors import VendorEndpointError

    conn = {
        "conn_type": "fyno",
        "host": f"{sandbox.url}/extra",
        "password": TOKEN,
        "extra": {"workspace_id": WORKSPACE},
    }
    monkeypatch.setenv("AIRFLOW_CONN_IT_FYNO_PATH", json.dumps(conn))
    hook = get_hook("it_fyno_path", batch_size=10)
    with pytest.raises(VendorEndpointError, match="/extra/v1/sandboxwsid/live/profiles/properties/batch"):
        list(hook.update_users(UserUpdate(f"d{i}", {"plan": "pro"}) for i in range(40)))
    assert requests_received(sandbox) <= 4  # it used to make 49 calls and report 40 users rejected
