"""Unit tests of each hook's payloads, parsing and error mapping, on a fake transport (no network)."""

from __future__ import annotations

import email.utils
import json
import re

import pytest

from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.hooks import AltaTechHook, DXHook, FynoHook, UserComHook, VendorAuthError
from airflow_provider_userattrs.results import Outcome, UserUpdate

TOKEN = "unit-test-token-0123456789"  # the same token as conftest.make_hook

BASE = "http://127.0.0.1:9"
FYNO_BATCH = f"{BASE}/v1/ws-0123456789/live/profiles/properties/batch"
USERCOM_MASS = f"{BASE}/api/public/users/mass_update_custom_attributes/"


def outcomes(result):
    return {r.attribute: r.outcome for r in result.results}


def test_altatech_payload_and_per_property_outcomes(fake, make_hook):
    hook = make_hook("altatech")
    assert isinstance(hook, AltaTechHook)
    fake.post(
        f"{BASE}/v1/property/update",
        json={"success_update": [{"propertyName": "vip", "value": "gold"}], "fail_update": [{"property_name": "x"}]},
    )
    result = hook.update_user("u1", {"vip": "gold", "x": 1, "gone": None})
    call = fake.calls[0].request
    assert hook.api.headers(TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    assert json.loads(call.body) == {
        "user_id": "u1",
        "property_values": [{"property_name": "vip", "value": "gold"}, {"property_name": "x", "value": 1}],
    }
    assert outcomes(result) == {"gone": Outcome.SKIPPED, "vip": Outcome.DELIVERED, "x": Outcome.REJECTED}
    assert not result.ok and not result.retryable


def test_altatech_both_auth_error_shapes_fail_fast(fake, make_hook, clock):
    hook = make_hook("altatech")
    fake.post(f"{BASE}/v1/property/update", status=401, json={"error": {"code": 40127, "message": "no"}})
    with pytest.raises(VendorAuthError) as exc:
        hook.update_user("u1", {"a": 1})
    assert TOKEN not in str(exc.value)
    assert len(fake.calls) == 1 and clock.sleeps == []


def test_altatech_parameter_error_is_a_rejection(fake, make_hook):
    hook = make_hook("altatech")
    fake.post(f"{BASE}/v1/property/update", status=400, json={"code": 40000, "message": "bad user_id"})
    result = hook.update_user("u1", {"a": 1})
    assert result.results[0].outcome is Outcome.REJECTED
    assert "bad user_id" in result.results[0].reason and "HTTP 400" in result.results[0].reason


DEPARTMENT_UPDATED = {"name": "Department", "value": "Eng", "updated": True}


def test_retries_on_429_honouring_retry_after_then_delivers(fake, make_hook, clock):
    hook = make_hook("dx")
    url = f"{BASE}/users.attributes.update"
    fake.post(url, status=429, headers={"Retry-After": "7"}, json={"ok": False, "error": "rate_limited"})
    start = clock.now
    when = email.utils.formatdate(start + 12, usegmt=True)
    fake.post(url, status=503, headers={"Retry-After": when}, body="")
    fake.post(url, status=200, json={"ok": True, "user": {"failures": [], "attributes": [DEPARTMENT_UPDATED]}})
    result = hook.update_user("a@b.co", {"Department": "Eng"})
    assert result.ok
    assert len(fake.calls) == 3
    assert clock.sleeps[0] >= 7  # Retry-After in seconds
    assert clock.now >= start + 11  # Retry-After as an HTTP date: waited until then


def test_gives_up_after_max_attempts_as_retryable_failure(fake, make_hook, clock):
    hook = make_hook("dx", max_attempts=3)
    fake.post(f"{BASE}/users.attributes.update", status=502, body="<html>bad gateway</html>")
    result = hook.update_user("a@b.co", {"a": "1"})
    assert len(fake.calls) == 3
    assert result.results[0].outcome is Outcome.FAILED and result.retryable
    assert "HTTP 502" in result.results[0].reason and "3 attempts" in result.results[0].reason
    assert len(clock.sleeps) == 2


def test_connection_errors_are_retried(fake, make_hook, clock):
    hook = make_hook("dx", max_attempts=4)
    url = f"{BASE}/users.attributes.update"
    fake.post(url, body=ConnectionResetError("reset by peer"))
    fake.post(url, body=TimeoutError("slow"))
    fake.post(url, json={"ok": True, "user": {"attributes": [{"name": "a", "value": "1", "updated": True}]}})
    assert hook.update_user("a@b.co", {"a": "1"}).ok
    assert len(fake.calls) == 3


def test_retry_after_longer_than_allowed_fails_now_but_stays_retryable(fake, make_hook, clock):
    hook = make_hook("dx", max_retry_wait=60)
    fake.post(f"{BASE}/users.attributes.update", status=429, headers={"Retry-After": "3600"})
    result = hook.update_user("a@b.co", {"a": "1"})
    assert len(fake.calls) == 1
    assert result.results[0].outcome is Outcome.FAILED and "3600" in result.results[0].reason


def test_dx_checks_ok_whatever_the_status(fake, make_hook):
    hook = make_hook("dx")
    url = f"{BASE}/users.attributes.update"
    fake.post(url, status=200, json={"ok": False, "error": "user_not_found"})
    result = hook.update_user("ghost@example.com", {"a": "1"})
    assert result.results[0].outcome is Outcome.REJECTED and "user_not_found" in result.results[0].reason
    fake.post(url, status=422, json={"ok": False, "error": "invalid_auth"})
    with pytest.raises(VendorAuthError, match="invalid_auth"):
        hook.update_user("ghost@example.com", {"a": "1"})


def test_dx_payload_stringifies_and_surfaces_failures(fake, make_hook):
    hook = make_hook("dx")
    fake.post(
        f"{BASE}/users.attributes.update",
        json={"ok": True, "user": {"failures": [{"name": "Tenure", "error": "invalid_value"}]}},
    )
    result = hook.update_user("a@b.co", {"Tenure": 5, "Manager": True, "Region": None, "Team": "core"})
    body = json.loads(fake.calls[0].request.body)
    assert body["attributes"] == [
        {"name": "Tenure", "value": "5"},
        {"name": "Manager", "value": "true"},
        {"name": "Region", "value": None},
        {"name": "Team", "value": "core"},
    ]
    assert outcomes(result)["Tenure"] is Outcome.REJECTED
    assert outcomes(result)["Region"] is Outcome.DELIVERED


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, "<html>oops</html>", "text/html"),
        (200, '{"ok": tr', "application/json"),
        (200, '{"ok": "yes"}', "application/json"),
        (200, "[1, 2]", "application/json"),
        (200, "", "application/json"),
    ],
)
def test_garbage_answers_become_clear_retryable_failures(fake, make_hook, status, body, content_type):
    hook = make_hook("dx")
    fake.post(f"{BASE}/users.attributes.update", status=status, body=body, content_type=content_type)
    result = hook.update_user("a@b.co", {"a": "1"})
    (attribute,) = result.results
    assert attribute.outcome is Outcome.FAILED
    assert "DX" in attribute.reason and "HTTP 200" in attribute.reason


def test_fyno_batches_users_and_maps_nulls_to_unset(fake, make_hook):
    hook = make_hook("fyno", extra={"workspace_id": "ws-0123456789"}, batch_size=3)

    def answer(request):
        # The two batches go out concurrently: the answer depends on the batch, never on which came first.
        batch = json.loads(request.body)["batch"]
        items = [{"$set": "failed" if i["distinct_id"] == "d1" else "ok", "$unset": "ok"} for i in batch]
        return 202, {}, json.dumps({"request_id": f"r-{len(batch)}", "batch": items})

    fake.add_callback("POST", FYNO_BATCH, answer)
    updates = [UserUpdate(f"d{i}", {"plan": "pro", "old": None}) for i in range(4)]
    results = {r.user_id: r for r in hook.update_users(updates)}
    assert len(fake.calls) == 2  # batches of 3 and 1 (sent concurrently: either may go first)
    first = next(body for c in fake.calls if len((body := json.loads(c.request.body))["batch"]) == 3)
    assert first["batch"][0] == {"distinct_id": "d0", "action": {"$set": {"plan": "pro"}, "$unset": ["old"]}}
    assert len(first["batch"]) == 3
    assert results["d0"].ok and not results["d1"].ok and results["d3"].ok
    (failed,) = results["d1"].failures
    assert failed.attribute == "plan" and failed.retryable and '"$set": "failed"' in failed.reason


def test_fyno_whole_batch_rejection_is_split_until_the_bad_record_is_isolated(fake, make_hook):
    hook = make_hook("fyno", extra={"workspace_id": "ws-0123456789"}, batch_size=8)

    def answer(request):
        batch = json.loads(request.body)["batch"]
        if any(item["distinct_id"] == "d5" for item in batch):
            return 400, {}, json.dumps({"_message": "$set has object/keys that is not allowed", "status": "error"})
        return 202, {}, json.dumps({"request_id": "ok"})

    fake.add_callback("POST", FYNO_BATCH, callback=answer)
    results = {r.user_id: r for r in hook.update_users(UserUpdate(f"d{i}", {"a": i}) for i in range(8))}
    assert [uid for uid, r in results.items() if not r.ok] == ["d5"]
    assert "$set has object" in results["d5"].failures[0].reason
    assert not results["d5"].retryable
    # 8 -> 4+4 -> 2+2 -> 1+1: 1 + 2 + 2 + 2 calls
    assert len(fake.calls) == 7


def test_fyno_invalid_api_details_is_an_auth_error(fake, make_hook):
    hook = make_hook("fyno", extra={"workspace_id": "ws-0123456789"})
    fake.post(FYNO_BATCH, status=401, json={"_message": "Invalid API details", "status": "error"})
    with pytest.raises(VendorAuthError, match="workspace_id"):
        list(hook.update_users([UserUpdate("d1", {"a": 1})]))


def test_fyno_needs_a_workspace(make_hook):
    with pytest.raises(ConnectionConfigError, match="workspace_id"):
        make_hook("fyno").get_conn()


def test_usercom_groups_shared_values_into_mass_updates(fake, make_hook):
    hook = make_hook("usercom", mass_update_chunk_size=1000)
    fake.post(USERCOM_MASS, json={"status": "ok"})
    fake.post(f"{BASE}/api/public/users/3/set_multiple_attributes/", json={"id": 3})
    updates = [UserUpdate(1, {"vip": "gold", "score": 1}), UserUpdate(2, {"vip": "gold", "score": 1})]
    updates.append(UserUpdate("3", {"vip": "silver", "score": 1}))
    results = list(hook.update_users(updates))
    assert all(r.ok for r in results) and len(results) == 3
    bodies = sorted((c.request.url, c.request.body) for c in fake.calls)
    assert len(bodies) == 3  # vip=gold and score=1 for users 1 and 2; user 3's own call carries both its values
    mass = [json.loads(b) for u, b in bodies if u == USERCOM_MASS]
    assert {"ids": [1, 2], "attribute": "vip", "value": "gold"} in mass
    assert {"ids": [1, 2], "attribute": "score", "value": 1} in mass
    own = [json.loads(b) for u, b in bodies if u.endswith("/users/3/set_multiple_attributes/")]
    assert own == [{"vip": "silver", "score": 1}]
    assert hook.api.headers(TOKEN)["Authorization"] == f"Token {TOKEN}"


def test_usercom_mass_update_chunks_and_isolates_unknown_ids(fake, make_hook):
    hook = make_hook("usercom", mass_update_chunk_size=4)

    def answer(request):
        ids = json.loads(request.body)["ids"]
        if 7 in ids:
            return 400, {}, json.dumps({"ids": ['Invalid pk "7" - object does not exist.']})
        return 200, {}, json.dumps({"status": "ok"})

    fake.add_callback("POST", USERCOM_MASS, callback=answer)
    results = list(hook.mass_update("churn_risk", True, range(1, 11)))
    assert len(results) == 10
    failed = [r for r in results if not r.ok]
    assert [r.user_id for r in failed] == [7]
    assert failed[0].failures[0].reason == "User.com: no user with this id in the app"  # stable: groups across users
    first_calls = [json.loads(c.request.body)["ids"] for c in fake.calls]
    assert max(len(ids) for ids in first_calls) == 4


def test_same_user_twice_keeps_both_results_and_last_write_wins(fake, make_hook):
    hook = make_hook("dx")
    fake.post(f"{BASE}/users.attributes.update", json={"ok": True, "user": {}})
    results = list(hook.update_users([UserUpdate("a@b.co", {"v": "1"}), UserUpdate("a@b.co", {"v": "2"})]))
    assert len(results) == 2
    sent = [json.loads(c.request.body)["attributes"][0]["value"] for c in fake.calls]
    assert sent == ["1", "2"]  # the second waited for the first


def test_invalid_users_are_reported_and_the_rest_is_sent(fake, make_hook):
    hook = make_hook("usercom")
    fake.post(USERCOM_MASS, json={"status": "ok"})
    results = list(hook.mass_update("a", 1, [1, "x", None, 2]))
    assert len(results) == 4
    bad = {r.user_id: r.failures[0].reason for r in results if not r.ok}
    assert set(bad) == {"x", None}
    assert json.loads(fake.calls[0].request.body)["ids"] == [1, 2]


@pytest.mark.parametrize(
    ("conn_type", "status", "body", "ok"),
    [
        ("altatech", 400, {"code": 40000, "message": "user_id required"}, True),
        ("altatech", 401, {"code": 40127, "message": "authentication failed"}, False),
        ("dx", 422, {"ok": False, "error": "invalid_arguments"}, True),
        ("dx", 422, {"ok": False, "error": "not_authed"}, False),
        ("usercom", 400, {"ids": ["This list may not be empty."]}, True),
        ("usercom", 401, {"detail": "Invalid token."}, False),
        ("fyno", 400, {"_message": "batch must not be empty", "status": "error"}, True),
        ("fyno", 401, {"_message": "Invalid API details", "status": "error"}, False),
    ],
)
def test_test_connection(fake, make_hook, conn_type, status, body, ok):
    hook = make_hook(conn_type, extra={"workspace_id": "ws-0123456789"} if conn_type == "fyno" else None)
    fake.post(re.compile(f"{BASE}/.*"), status=status, json=body)
    success, message = hook.test_connection()
    assert success is ok
    assert TOKEN not in message


def test_test_connection_reports_unreachable_host(make_hook):
    hook = make_hook("dx", host="http://127.0.0.1:1")
    ok, message = hook.test_connection()
    assert not ok and "DX" in message


def test_plain_http_is_refused_for_non_loopback_hosts(make_hook):
    with pytest.raises(ConnectionConfigError, match="loopback"):
        make_hook("dx", host="http://crm.example.com").get_conn()
    assert make_hook("dx", host="http://crm.example.com", extra={"allow_insecure_http": True}).get_conn()


def test_default_hosts_and_repr_without_secrets(make_hook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALTATECH_DEFAULT", json.dumps({"conn_type": "altatech", "password": TOKEN}))
    hook = AltaTechHook()
    hook.get_conn()
    assert hook.get_conn().sender.base_url == "https://altatech.ai"
    assert TOKEN not in repr(hook.get_conn())
    assert TOKEN not in repr(hook)
    monkeypatch.setenv("AIRFLOW_CONN_USERCOM_DEFAULT", json.dumps({"conn_type": "usercom", "password": TOKEN}))
    with pytest.raises(ConnectionConfigError, match=r"user\.com"):
        UserComHook().get_conn()
    assert DXHook.default_conn_name == "dx_default" and FynoHook.default_conn_name == "fyno_default"
