"""The sandbox speaks each vendor's API, injects the faults it promises and can be steered from outside."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_userattrs.sandbox import SandboxClient, SandboxServer

TOKEN = "sandbox-token"
FYNO = "/v1/sandboxwsid/live/profiles/properties"
REPO = Path(__file__).resolve().parents[2]


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
    # As documented: one item per entry, keyed by operation, naming no user; a refusal is not "ok".
    assert status == 202 and answer["batch"][0] == {"$set": "ok"} and answer["batch"][1]["$set"] != "ok"
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
    sandbox.declare_usercom_attributes(["vip", "tier", "a"])
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


# -- as strict as the vendors (issue 12) ---------------------------------------------------------------------

USERCOM = "/api/public/users"
DX_PATH = "/users.attributes.update"
ALTATECH_PATH = "/v1/property/update"
GOOD = {
    "altatech": (
        ALTATECH_PATH,
        f"Bearer {TOKEN}",
        {"user_id": "u1", "property_values": [{"property_name": "p", "value": 1}]},
    ),
    "fyno": (f"{FYNO}/set", f"Bearer {TOKEN}", {"distinct_id": "d1", "$set": {"plan": "pro"}}),
    "dx": (DX_PATH, f"Bearer {TOKEN}", {"email": "a@example.com", "attributes": [{"name": "plan", "value": "pro"}]}),
    "usercom": (
        f"{USERCOM}/mass_update_custom_attributes/",
        f"Token {TOKEN}",
        {"ids": [1], "attribute": "plan", "value": 1},
    ),
}
"""A request each vendor accepts (User.com's attribute ``plan`` declared by the tests that send it)."""


def call(
    sandbox: SandboxServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: str | None = f"Bearer {TOKEN}",
    content_type: str | None = "application/json",
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request through urllib; (status, headers, parsed body) whatever the status."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sandbox.url + path, data=data, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), _parsed(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), _parsed(error.read())


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode()


def nothing_stored(sandbox: SandboxServer) -> bool:
    return all(sandbox.state(vendor) == {} for vendor in ("altatech", "fyno", "dx", "usercom"))


@pytest.mark.parametrize(
    ("vendor", "method", "status", "body"),
    [
        ("altatech", "GET", 405, {"code": 40500, "message": "method GET not allowed"}),
        ("altatech", "PUT", 405, {"code": 40500, "message": "method PUT not allowed"}),
        ("fyno", "GET", 405, {"_message": "Method GET not allowed", "status": "error"}),
        ("fyno", "PUT", 405, {"_message": "Method PUT not allowed", "status": "error"}),
        ("dx", "GET", 405, {"ok": False, "error": "method_not_allowed"}),
        ("dx", "PATCH", 405, {"ok": False, "error": "method_not_allowed"}),
        ("usercom", "GET", 405, {"detail": 'Method "GET" not allowed.'}),
        ("usercom", "DELETE", 405, {"detail": 'Method "DELETE" not allowed.'}),
    ],
)
def test_methods_other_than_the_seeds_are_refused_in_the_vendors_shape(sandbox, vendor, method, status, body):
    sandbox.declare_usercom_attributes(["plan"])
    path, auth, payload = GOOD[vendor]
    answer = call(sandbox, method, path, payload, auth=auth)
    assert (answer[0], answer[2]) == (status, body)
    assert answer[1]["Allow"] == ("POST, PUT" if vendor == "usercom" else "POST")
    assert nothing_stored(sandbox)
    assert call(sandbox, "POST", path, payload, auth=auth)[0] in (200, 202)


def test_usercom_mass_update_takes_put_and_post_and_set_multiple_only_post(sandbox):
    sandbox.declare_usercom_attributes(["plan"])
    auth = f"Token {TOKEN}"
    path = f"{USERCOM}/mass_update_custom_attributes/"
    assert call(sandbox, "PUT", path, {"ids": [1], "attribute": "plan", "value": "a"}, auth=auth)[0] == 200
    assert call(sandbox, "POST", path, {"ids": [2], "attribute": "plan", "value": "b"}, auth=auth)[0] == 200
    status, headers, _ = call(sandbox, "PUT", f"{USERCOM}/3/set_multiple_attributes/", {"plan": "c"}, auth=auth)
    assert (status, headers["Allow"]) == (405, "POST")
    assert sandbox.state("usercom") == {"1": {"plan": "a"}, "2": {"plan": "b"}}


def test_head_is_refused_without_a_body_and_the_connection_stays_usable(sandbox):
    conn = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=5)
    conn.request("HEAD", DX_PATH, headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    assert (response.status, response.read()) == (405, b"")
    path, auth, payload = GOOD["dx"]
    conn.request("POST", path, json.dumps(payload), {"Authorization": auth, "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["ok"] is True
    conn.close()


CONTENT_TYPE_REFUSALS = {
    "altatech": (
        400,
        lambda got: {"code": 40000, "message": f"parameter error: Content-Type must be application/json, not {got!r}"},
    ),
    "fyno": (400, lambda got: {"_message": f"Content-Type must be application/json, not {got!r}", "status": "error"}),
    "dx": (422, lambda got: {"ok": False, "error": "invalid_content_type"}),
    "usercom": (415, lambda got: {"detail": f'Unsupported media type "{got}" in request.'}),
}


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_a_body_that_is_not_declared_json_is_refused(sandbox, vendor, content_type):
    sandbox.declare_usercom_attributes(["plan"])
    path, auth, payload = GOOD[vendor]
    status, _, body = call(sandbox, "POST", path, payload, auth=auth, content_type=content_type)
    expected_status, expected_body = CONTENT_TYPE_REFUSALS[vendor]
    assert (status, body) == (expected_status, expected_body(content_type))
    assert nothing_stored(sandbox)


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
def test_a_missing_content_type_is_refused_and_json_with_a_charset_is_taken(sandbox, vendor):
    sandbox.declare_usercom_attributes(["plan"])
    path, auth, payload = GOOD[vendor]
    conn = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=5)  # urllib would add a Content-Type
    conn.request("POST", path, json.dumps(payload), {"Authorization": auth})
    response = conn.getresponse()
    expected_status, expected_body = CONTENT_TYPE_REFUSALS[vendor]
    assert (response.status, json.loads(response.read())) == (expected_status, expected_body(""))
    conn.close()
    assert nothing_stored(sandbox)
    status, _, _ = call(sandbox, "POST", path, payload, auth=auth, content_type="Application/JSON; charset=utf-8")
    assert status in (200, 202)


@pytest.mark.parametrize(
    ("vendor", "status", "expected"),
    [
        ("altatech", 400, {"code": 40000}),
        ("fyno", 400, {"status": "error"}),
        ("dx", 422, {"ok": False, "error": "invalid_json"}),
        ("usercom", 400, {}),
    ],
)
def test_bad_json_is_answered_in_the_vendors_shape(sandbox, vendor, status, expected):
    path, auth, _ = GOOD[vendor]
    answer_status, _, body = call(sandbox, "POST", path, auth=auth, raw=b'{"email": ')
    assert answer_status == status and expected.items() <= body.items(), body
    if vendor == "usercom":
        assert body["detail"].startswith("JSON parse error - ")  # Django REST framework's own wording
    if vendor == "dx":
        assert body == {"ok": False, "error": "invalid_json"}  # not {"detail": ...}: DX always answers ok


def test_credentials_are_checked_before_the_media_type_and_the_json(sandbox):
    status, _, body = call(sandbox, "POST", DX_PATH, auth="Bearer wrong", raw=b"{", content_type="text/plain")
    assert (status, body) == (422, {"ok": False, "error": "invalid_auth"})
    status, _, body = call(sandbox, "POST", f"{USERCOM}/1/set_multiple_attributes/", auth=None, raw=b"{")
    assert (status, body) == (401, {"detail": "Invalid token."})


def test_fyno_batch_items_without_an_action_refuse_the_whole_batch(sandbox):
    good = {"distinct_id": "d1", "action": {"$set": {"plan": "pro"}}}
    for bad in (
        {"distinct_id": "d2", "$set": {"plan": "pro"}},
        {"distinct_id": "d2"},
        {"distinct_id": "d2", "action": []},
    ):
        status, _, body = call(sandbox, "POST", f"{FYNO}/batch", {"batch": [good, bad]})
        assert status == 400 and body["status"] == "error" and "action" in body["_message"], body
    assert nothing_stored(sandbox)  # the good item was not applied either
    assert call(sandbox, "POST", f"{FYNO}/batch", {"batch": [good]})[0] == 202


FYNO_SHAPES = {
    "operations": lambda ok, bad: {"batch": [{"$set": "ok"}, {"$set": "user not found"}, {"$set": bad[2]}]},
    "results": lambda ok, bad: {
        "results": [
            {"distinct_id": ok, "status": "ok"},
            {"distinct_id": bad[0], "status": "error", "_message": "user not found"},
            {"distinct_id": bad[1], "status": "error", "_message": bad[2]},
        ]
    },
    "batch": lambda ok, bad: {
        "batch": [
            {"distinct_id": ok, "success": True},
            {"distinct_id": bad[0], "success": False, "error": "user not found"},
            {"distinct_id": bad[1], "success": False, "error": bad[2]},
        ]
    },
    "request_id": lambda ok, bad: {},
}


@pytest.mark.parametrize("shape", ["operations", "results", "batch", "request_id"])
def test_fyno_per_item_status_comes_in_the_chosen_plausible_shape(sandbox, shape):
    assert sandbox.set_answer_shapes(fyno_batch=shape)["fyno_batch"] == shape
    sandbox.register_unknown_users("fyno", ["ghost"])
    batch = [
        {"distinct_id": "d1", "action": {"$set": {"plan": "pro"}}},
        {"distinct_id": "ghost", "action": {"$set": {"plan": "pro"}}},
        {"distinct_id": "d3", "action": {"$set": {"plan": "x" * 256}}},
    ]
    status, _, body = call(sandbox, "POST", f"{FYNO}/batch", {"batch": batch})
    assert status == 202 and isinstance(body.pop("request_id"), str)
    long_reason = "value of 'plan' is not a string of at most 255 characters, number, boolean, date or list"
    assert body == FYNO_SHAPES[shape]("d1", ("ghost", "d3", long_reason))
    assert sandbox.state("fyno") == {"sandboxwsid/live": {"d1": {"plan": "pro"}}}  # refused items never applied


DEFAULT_SHAPES = {
    "fyno_batch": "operations",
    "dx_failures": "name_error",
    "dx_updated": "always",
    "usercom_mass_method": "both",
}

DX_SHAPES = {
    "name_error": [{"name": "Level", "error": "invalid_value"}, {"name": "", "error": "invalid_name"}],
    "attribute_message": [
        {"attribute": "Level", "message": "value must be a string or null"},
        {"attribute": "", "message": "name must be a non-empty string"},
    ],
    "names": ["Level", ""],
}


@pytest.mark.parametrize("shape", ["name_error", "attribute_message", "names"])
def test_dx_failures_come_in_the_chosen_plausible_shape(sandbox, shape):
    sandbox.set_answer_shapes(dx_failures=shape)
    attributes = [{"name": "Team", "value": "core"}, {"name": "Level", "value": 3}, {"name": "", "value": "x"}]
    status, _, body = call(sandbox, "POST", DX_PATH, {"email": "a@example.com", "attributes": attributes})
    assert status == 200 and body["ok"] is True
    assert body["user"]["failures"] == DX_SHAPES[shape]
    assert body["user"]["attributes"] == [{"name": "Team", "value": "core", "updated": True}]
    assert sandbox.state("dx") == {"a@example.com": {"Team": "core"}}


def test_answer_shapes_are_set_at_start_over_http_and_refuse_unknown_names(sandbox):
    with SandboxServer(answer_shapes={"fyno_batch": "batch", "dx_failures": "names"}) as other:
        assert other.set_answer_shapes() == {**DEFAULT_SHAPES, "fyno_batch": "batch", "dx_failures": "names"}
        client = SandboxClient(other.url)
        assert client.set_answer_shapes(dx_failures="attribute_message") == {
            **DEFAULT_SHAPES,
            "fyno_batch": "batch",
            "dx_failures": "attribute_message",
        }
        other.reset()  # an account's set-up outlives its data
        assert other.set_answer_shapes()["dx_failures"] == "attribute_message"
        with pytest.raises(urllib.error.HTTPError):
            client.set_answer_shapes(fyno_batch="status")
    with pytest.raises(ValueError, match="fyno_batch must be one of"):
        sandbox.set_answer_shapes(fyno_batch="status")
    with pytest.raises(ValueError, match="unknown answer shapes"):
        sandbox.set_answer_shapes(fyno_status="results")


def test_usercom_attributes_must_exist_in_the_app_by_default(sandbox):
    with SandboxServer() as strict:
        status, _, body = call(
            strict,
            "POST",
            f"{USERCOM}/mass_update_custom_attributes/",
            {"ids": [1], "attribute": "vip", "value": 1},
            auth=f"Token {TOKEN}",
        )
        assert (status, body) == (400, {"attribute": ["Object with name=vip does not exist."]})
        assert strict.usercom_attributes() == []
    auth = f"Token {TOKEN}"
    sandbox.declare_usercom_attributes(["plan"], replace=True)
    status, _, body = call(
        sandbox, "POST", f"{USERCOM}/7/set_multiple_attributes/", {"plan": "a", "tier": 2}, auth=auth
    )
    assert (status, body) == (400, {"tier": ["Object with name=tier does not exist."]})
    assert sandbox.state("usercom") == {}  # the known attribute was not applied either
    assert sandbox.declare_usercom_attributes(["tier"]) == ["plan", "tier"]
    assert call(sandbox, "POST", f"{USERCOM}/7/set_multiple_attributes/", {"plan": "a", "tier": 2}, auth=auth)[0] == 200
    sandbox.reset()  # the app's attributes outlive its data
    assert sandbox.usercom_attributes() == ["plan", "tier"]
    assert sandbox.declare_usercom_attributes(None) is None  # the check off: any name is taken
    body = {"ids": [1], "attribute": "anything", "value": True}
    assert call(sandbox, "POST", f"{USERCOM}/mass_update_custom_attributes/", body, auth=auth)[0] == 200


def test_usercom_attributes_are_declared_over_http(sandbox):
    client = SandboxClient(sandbox.url)
    assert client.declare_usercom_attributes(["a", "b"], replace=True) == ["a", "b"]
    assert client.declare_usercom_attributes(["c"]) == ["a", "b", "c"]
    assert client.usercom_attributes() == sandbox.usercom_attributes() == ["a", "b", "c"]
    assert client.declare_usercom_attributes(None) is None and sandbox.usercom_attributes() is None
    with pytest.raises(urllib.error.HTTPError):
        client._call("POST", "usercom_attributes", {"attributes": "a"})  # a string is not a list of names


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
        [
            *(sys.executable, "-m", "airflow_provider_userattrs.sandbox", "--port", "0", "--port-file", str(port_file)),
            *("--usercom-attribute", "tier", "--usercom-attribute", "plan"),
            *("--answer-shapes", '{"fyno_batch": "request_id"}'),
        ],
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
        assert client.usercom_attributes() == ["plan", "tier"]
        assert client.set_answer_shapes() == {**DEFAULT_SHAPES, "fyno_batch": "request_id"}
        client.register_unknown_users("dx", ["ghost@example.com"])
        client.script([{"status": 502}])
        conn = http.client.HTTPConnection("127.0.0.1", int(port_file.read_text()), timeout=5)
        for expected in (502, 422, 200):
            email = "ghost@example.com" if expected == 422 else "a@example.com"
            payload = json.dumps({"email": email, "attributes": [{"name": "t", "value": "v"}]})
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            conn.request("POST", "/users.attributes.update", payload, headers)
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


# -- the scripts that start a sandbox create the User.com attributes their DAGs send ----------------------------


def _example_dag_attributes() -> set[str]:
    """The warehouse columns the sync sends, and the default attributes of the mass and manual update DAGs."""
    import ast

    from airflow_provider_userattrs.demo.segments import SYNC_ATTRIBUTES

    defaults = set(SYNC_ATTRIBUTES)
    for dag in ("userattrs_mass_update.py", "userattrs_manual_update.py"):
        tree = ast.parse((REPO / "dags" / dag).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "attribute" and isinstance(value, ast.Call):
                        defaults.add(ast.literal_eval(value.args[0]))
    return defaults


def test_compose_sandbox_creates_every_attribute_the_example_dags_send():
    import yaml

    command = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]["sandbox"]["command"]
    declared = {arg.split("=", 1)[1] for arg in command if arg.startswith("--usercom-attribute=")}
    assert declared == _example_dag_attributes() and {"churn_risk_flag", "plan"} <= declared


def test_demo_creates_the_attributes_its_dags_send():
    """demo.sh runs the sync and the mass update (not the manual update): their attributes, passed to the sandbox."""
    import re

    script = (REPO / "scripts" / "demo.sh").read_text()
    (code,) = re.findall(r"mapfile -t USERCOM_ATTRIBUTES < <\(\"\$PY\" -c '(.*?)'\)", script, flags=re.DOTALL)
    args = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert args[::2] == ["--usercom-attribute"] * (len(args) // 2)
    assert set(args[1::2]) == _example_dag_attributes() - {"plan"}
    assert '--port-file "$DEMO/sandbox.port" "${USERCOM_ATTRIBUTES[@]}"' in script


def test_dx_can_answer_updated_false_for_a_value_it_already_had(sandbox):
    sandbox.set_answer_shapes(dx_updated="changed")
    attributes = [{"name": "Team", "value": "core"}, {"name": "Level", "value": "3"}]
    first = call(sandbox, "POST", DX_PATH, {"email": "a@example.com", "attributes": attributes})[2]
    assert [a["updated"] for a in first["user"]["attributes"]] == [True, True]
    attributes[1]["value"] = "4"
    second = call(sandbox, "POST", DX_PATH, {"email": "a@example.com", "attributes": attributes})[2]
    assert [a["updated"] for a in second["user"]["attributes"]] == [False, True]


@pytest.mark.parametrize("only", ["PUT", "POST"])
def test_usercom_mass_update_can_take_one_method_only(sandbox, only):
    sandbox.set_answer_shapes(usercom_mass_method=only)
    other = "POST" if only == "PUT" else "PUT"
    path, body, auth = "/api/public/users/mass_update_custom_attributes/", {"ids": [1], "attribute": "x"}, "Token"
    status, headers, answer = call(sandbox, other, path, {**body, "value": 1}, auth=f"{auth} {TOKEN}")
    assert status == 405 and headers["Allow"] == only and answer == {"detail": f'Method "{other}" not allowed.'}
