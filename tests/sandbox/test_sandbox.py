"""The sandbox speaks each vendor's API, injects the faults it promises and can be steered from outside."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_userattrs.sandbox import SandboxClient, SandboxServer

TOKEN = "sandbox-token"
FYNO = "/v1/sandboxwsid/live/profiles/properties"


def post(sandbox: SandboxServer, path: str, body: Any, auth: str | None = f"Bearer {TOKEN}", timeout: float = 5):
    conn = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    conn.request("POST", path, json.dumps(body), headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = data.decode()
    return response.status, dict(response.getheaders()), parsed


# -- vendor behaviour -------------------------------------------------------------------------------------


def test_altatech_answers_per_property_and_refuses_bad_keys(sandbox):
    body = {"user_id": "u1", "property_values": [{"property_name": "vip", "value": "gold"}, {"property_name": "id"}]}
    status, _, answer = post(sandbox, "/v1/property/update", body)
    assert status == 200
    assert answer["success_update"] == [{"property_name": "vip", "value": "gold"}]
    assert answer["fail_update"][0]["propertyName"] == "id"
    assert sandbox.state("altatech") == {"u1": {"vip": "gold"}}
    status, _, answer = post(sandbox, "/v1/property/update", body, auth="Bearer nope")
    assert status == 401 and answer["error"]["code"] == 40127
    status, _, answer = post(sandbox, "/v1/property/update", {"user_id": "x" * 33, "property_values": []})
    assert status == 400 and answer["code"] == 40000


def test_fyno_batch_set_unset_types_and_auth(sandbox):
    batch = {
        "batch": [
            {
                "distinct_id": "d1",
                "action": {"$set": {"plan": "pro", "ltv": 12.5, "since": "2020-10-01T18:30:00.000+05:30"}},
            },
            {"distinct_id": "d2", "action": {"$set": {"plan": "x" * 256}}},
        ]
    }
    status, _, answer = post(sandbox, f"{FYNO}/batch", batch)
    assert status == 202 and [r["status"] for r in answer["results"]] == ["ok", "error"]
    # a value of another type than the property's is accepted and silently ignored, as Fyno documents
    status, _, _ = post(sandbox, f"{FYNO}/set", {"distinct_id": "d1", "$set": {"ltv": "lots"}})
    assert status == 202
    status, _, _ = post(sandbox, f"{FYNO}/unset", {"distinct_id": "d1", "$unset": ["plan"]})
    assert status == 202
    assert sandbox.state("fyno")["sandboxwsid/live"]["d1"] == {"ltv": 12.5, "since": "2020-10-01T18:30:00.000+05:30"}
    status, _, answer = post(sandbox, f"{FYNO}/batch", {"batch": [{"distinct_id": "d", "action": {"$set": {"o": {}}}}]})
    assert (status, answer["_message"]) == (400, "$set has object/keys that is not allowed")
    status, _, answer = post(sandbox, "/v1/otherwsid/live/profiles/properties/batch", batch)
    assert (status, answer["_message"]) == (401, "Invalid API details")


def test_dx_ok_field_null_removal_unknown_users_and_auth(sandbox):
    path = "/users.attributes.update"
    attrs = [{"name": "Region", "value": "EU"}, {"name": "Team", "value": "core"}, {"name": "Level", "value": 3}]
    status, _, answer = post(sandbox, path, {"email": "a@example.com", "attributes": attrs})
    assert status == 200 and answer["ok"] is True
    assert answer["user"]["failures"] == [{"name": "Level", "error": "invalid_value"}]
    post(sandbox, path, {"email": "a@example.com", "attributes": [{"name": "Region", "value": None}]})
    assert sandbox.state("dx") == {"a@example.com": {"Team": "core"}}
    assert post(sandbox, path, {"email": "g@x.invalid", "attributes": attrs})[2] == {
        "ok": False,
        "error": "user_not_found",
    }
    assert post(sandbox, path, {"email": "a@example.com", "attributes": []}, auth=None)[2]["error"] == "not_authed"
    status, _, answer = post(sandbox, path, {"email": "a@example.com", "attributes": []}, auth="Bearer bad")
    assert (status, answer) == (422, {"ok": False, "error": "invalid_auth"})


def test_usercom_token_auth_mass_update_and_unknown_ids(sandbox):
    root, auth = "/api/public/users", f"Token {TOKEN}"
    status, _, answer = post(
        sandbox, f"{root}/mass_update_custom_attributes/", {"ids": [1, 2], "attribute": "vip", "value": True}, auth
    )
    assert (status, answer) == (200, {"status": "ok"})
    assert post(sandbox, f"{root}/mass_update_custom_attributes/", {"ids": [1]}, f"Bearer {TOKEN}")[0] == 401
    sandbox.register_unknown_users("usercom", [7])
    status, _, answer = post(
        sandbox, f"{root}/mass_update_custom_attributes/", {"ids": [1, 7], "attribute": "a", "value": 1}, auth
    )
    assert status == 400 and "7" in answer["ids"][0]
    status, _, answer = post(
        sandbox, f"{root}/mass_update_custom_attributes/", {"ids": [1], "attribute": "", "value": 1}, auth
    )
    assert status == 400 and "attribute" in answer
    assert post(sandbox, f"{root}/2/set_multiple_attributes/", {"tier": "gold"}, auth)[0] == 200
    assert post(sandbox, f"{root}/7/set_multiple_attributes/", {"tier": "gold"}, auth)[0] == 404
    assert post(sandbox, f"{root}/2/set_multiple_attributes", {"tier": "gold"}, auth)[0] == 404  # slash required
    assert sandbox.state("usercom") == {"1": {"vip": True}, "2": {"vip": True, "tier": "gold"}}


# -- faults -------------------------------------------------------------------------------------------------


def test_script_answers_in_order_then_serves_normally(sandbox):
    sandbox.script([{"status": 503}, {"status": 429, "retry_after": 7}])
    body = {"email": "a@example.com", "attributes": [{"name": "x", "value": "1"}]}
    assert post(sandbox, "/users.attributes.update", body)[0] == 503
    status, headers, _ = post(sandbox, "/users.attributes.update", body)
    assert status == 429 and headers["Retry-After"] == "7"
    assert post(sandbox, "/users.attributes.update", body)[0] == 200
    assert sandbox.state("dx") == {"a@example.com": {"x": "1"}}  # failed answers applied nothing
    assert sandbox.stats()["requests"]["by_status"] == {"503": 1, "429": 1, "200": 1}


def test_drop_and_reset_break_the_connection_and_reset_applies_the_request(sandbox):
    body = {"user_id": "u1", "property_values": [{"property_name": "vip", "value": "gold"}]}
    sandbox.script([{"drop": True}])
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post(sandbox, "/v1/property/update", body)
    assert sandbox.state("altatech") == {}
    sandbox.script([{"reset": True}])
    with pytest.raises((http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError)):
        post(sandbox, "/v1/property/update", body)
    assert sandbox.state("altatech") == {"u1": {"vip": "gold"}}


def test_rate_limit_answers_429_with_retry_after_in_either_form(sandbox):
    body = {"user_id": "u1", "property_values": [{"property_name": "vip", "value": "gold"}]}
    sandbox.set_faults(rate_limit=2)
    statuses = [post(sandbox, "/v1/property/update", body) for _ in range(4)]
    assert [s for s, _, _ in statuses].count(429) >= 1
    ok_headers = statuses[0][1]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(ok_headers)
    sandbox.set_faults(rate_limit=1, retry_after_format="http-date")
    post(sandbox, "/v1/property/update", body)
    status, headers, _ = post(sandbox, "/v1/property/update", body)
    assert status == 429
    assert parsedate_to_datetime(headers["Retry-After"]).timestamp() >= time.time() - 1


def test_error_rate_is_seeded_and_garbage_is_html(sandbox):
    body = {"email": "a@example.com", "attributes": [{"name": "x", "value": "1"}]}
    sandbox.set_faults(error_rate=0.5, seed=3)
    first = [post(sandbox, "/users.attributes.update", body)[0] for _ in range(20)]
    sandbox.set_faults(error_rate=0.5, seed=3)
    assert [post(sandbox, "/users.attributes.update", body)[0] for _ in range(20)] == first
    assert {200} < set(first) <= {200, 500, 502, 503, 504}
    sandbox.set_faults(garbage_rate=1.0)
    status, headers, answer = post(sandbox, "/users.attributes.update", body)
    assert status == 200 and headers["Content-Type"] == "text/html" and "<html>" in answer


def test_slow_answers_exceed_a_client_timeout(sandbox):
    sandbox.set_faults(slow_rate=1.0, slow_seconds=1.0)
    with pytest.raises(TimeoutError):
        post(sandbox, "/users.attributes.update", {"email": "a@example.com", "attributes": []}, timeout=0.2)


def test_unknown_fault_names_are_refused(sandbox):
    with pytest.raises(ValueError, match="unknown fault settings"):
        sandbox.set_faults(error_rat=0.5)


# -- the command line and remote control --------------------------------------------------------------------


def test_cli_serves_and_is_steered_over_http(tmp_path: Path):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_userattrs.sandbox", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline and process.poll() is None, "sandbox did not start"
            time.sleep(0.05)
        client = SandboxClient(f"http://127.0.0.1:{port_file.read_text()}")
        client.wait_until_up()
        client.register_unknown_users("dx", ["ghost@example.com"])
        client.script([{"status": 502}])
        conn = http.client.HTTPConnection("127.0.0.1", int(port_file.read_text()), timeout=5)
        for expected in (502, 422, 200):
            email = "ghost@example.com" if expected == 422 else "a@example.com"
            payload = json.dumps({"email": email, "attributes": [{"name": "t", "value": "v"}]})
            conn.request("POST", "/users.attributes.update", payload, {"Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            response.read()
            assert response.status == expected
        assert client.state("dx") == {"a@example.com": {"t": "v"}}
        stats = client.stats()
        assert stats["requests"]["total"] == 3 and stats["users"]["dx"] == 1
        assert all(r["auth_header"] and "sandbox-token" not in r["path"] for r in client.requests())
        client.reset()
        assert client.stats()["requests"]["total"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
