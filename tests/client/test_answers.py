"""What each vendor's answer settles: only what the answer confirms is delivered, and what is not the data's
fault (a wrong route or method, a timeout, an outage, a throttle in a body) is never a record's rejection."""

from __future__ import annotations

import json

import pytest

from airflow_provider_userattrs.errors import VendorEndpointError
from airflow_provider_userattrs.results import Outcome, UserUpdate

BASE = "http://127.0.0.1:9"
DX = f"{BASE}/users.attributes.update"
ALTATECH = f"{BASE}/v1/property/update"
FYNO = f"{BASE}/v1/ws-0123456789/live/profiles/properties/batch"
USERCOM_MASS = f"{BASE}/api/public/users/mass_update_custom_attributes/"
USERCOM_USER = f"{BASE}/api/public/users/7/set_multiple_attributes/"


def delivered(result) -> set[str]:
    return {r.attribute for r in result.results if r.outcome is Outcome.DELIVERED}


def by_attribute(result) -> dict[str, Outcome]:
    return {r.attribute: r.outcome for r in result.results}


# -- DX: ok, then each attribute's own confirmation ------------------------------------------------------------

SENT = {"Team": "core", "Level": 5, "Region": None}


def dx_attribute(name: str, value: str, updated: object = True) -> dict:
    return {"name": name, "value": value, "updated": updated}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        # The documented answer: each non-null attribute listed with updated: true; nulls are not returned.
        ({"failures": [], "attributes": [dx_attribute("Team", "core"), dx_attribute("Level", "5")]}, SENT.keys()),
        # DX matches names without case: its answer may spell an existing group its own way.
        ({"attributes": [dx_attribute("team", "core"), dx_attribute("LEVEL", "5")]}, SENT.keys()),
        # ok: true alone confirms the removal only.
        ({}, {"Region"}),
        (None, {"Region"}),
        # A non-null attribute the answer does not list is not confirmed.
        ({"attributes": [dx_attribute("Team", "core")]}, {"Team", "Region"}),
        # updated: false is ambiguous (refused, or unchanged): not counted delivered.
        ({"attributes": [dx_attribute("Team", "core"), dx_attribute("Level", "5", False)]}, {"Team", "Region"}),
        ({"attributes": [dx_attribute("Team", "core"), dx_attribute("Level", "5", "yes")]}, {"Team", "Region"}),
        ({"attributes": "garbage"}, {"Region"}),
    ],
)
def test_dx_delivers_only_what_the_answer_confirms(make_client, fake, user, expected):
    body = {"ok": True} if user is None else {"ok": True, "user": user}
    fake.post(DX, json=body)
    result = make_client("dx").update_user("a@b.co", SENT)
    assert delivered(result) == set(expected)
    assert all(r.outcome is Outcome.FAILED and r.retryable for r in result.results if r.attribute not in expected)


def test_dx_updated_false_has_its_own_reason(make_client, fake):
    fake.post(DX, json={"ok": True, "user": {"attributes": [dx_attribute("Team", "core", False)]}})
    (team,) = make_client("dx").update_user("a@b.co", {"Team": "core"}).results
    assert team.outcome is Outcome.FAILED and "updated: false" in team.reason and "refused" in team.reason


@pytest.mark.parametrize(
    "failures",
    [[{"name": "level", "error": "invalid_value"}], [{"attribute": "LEVEL", "message": "bad"}], ["LEVEL"]],
)
def test_dx_a_failure_naming_a_sent_attribute_up_to_case_fails_that_attribute(make_client, fake, failures):
    listed = [dx_attribute("Team", "core"), dx_attribute("Level", "5")]
    fake.post(DX, json={"ok": True, "user": {"failures": failures, "attributes": listed}})
    result = make_client("dx").update_user("a@b.co", {"Team": "core", "Level": 5})
    assert by_attribute(result) == {"Team": Outcome.DELIVERED, "Level": Outcome.REJECTED}


def test_dx_a_failure_naming_nothing_sent_fails_the_user(make_client, fake):
    listed = [dx_attribute("Team", "core")]
    fake.post(DX, json={"ok": True, "user": {"failures": [{"name": "Tenure", "error": "x"}], "attributes": listed}})
    result = make_client("dx").update_user("a@b.co", {"Team": "core"})
    assert by_attribute(result) == {"Team": Outcome.REJECTED} and "Tenure" in result.results[0].reason


# -- Fyno: a request_id, then one item per entry -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "failed", "_message": "queue full"},
        {"success": False},
        {"status": "ok"},
        {"batch": [{"$set": "ok"}, {"$set": "ok"}]},
    ],
)
@pytest.mark.parametrize("status", [200, 202])
def test_fyno_a_2xx_without_request_id_confirms_nothing(make_client, fake, body, status):
    fake.post(FYNO, status=status, json=body)
    client = make_client("fyno", workspace_id="ws-0123456789", batch_size=2)
    results = list(client.update_users([UserUpdate("d0", {"a": 1}), UserUpdate("d1", {"a": None})]))
    assert all(r.retryable and not delivered(r) for r in results)


def test_fyno_items_are_read_per_operation(make_client, fake):
    items = [{"$set": "ok", "$unset": "ok"}, {"$set": "ok", "$unset": "failed"}]
    fake.post(FYNO, status=202, json={"request_id": "r", "batch": items})
    client = make_client("fyno", workspace_id="ws-0123456789", batch_size=2)
    updates = [UserUpdate("d0", {"a": 1, "b": None}), UserUpdate("d1", {"a": 1, "b": None})]
    results = {r.user_id: r for r in client.update_users(updates)}
    assert delivered(results["d0"]) == {"a", "b"} and delivered(results["d1"]) == {"a"}
    (unset,) = results["d1"].failures
    assert unset.retryable and "$unset" in unset.reason and "d1" not in unset.reason  # reasons group


# -- AltaTech: per-property lists --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"success_update": [{"property_name": "a"}, {"propertyName": "b"}], "fail_update": []}, {"a", "b"}),
        ({"success_update": [{"property_name": "a"}], "fail_update": [{"property_name": "b"}]}, {"a"}),
        ({"success_update": [{"property_name": "a"}]}, {"a"}),
        ({"success_update": [], "fail_update": []}, set()),
        ({"ok": True}, set()),
        ({}, set()),
    ],
)
def test_altatech_delivers_only_the_properties_it_lists_as_updated(make_client, fake, body, expected):
    fake.post(ALTATECH, json=body)
    assert delivered(make_client("altatech").update_user("u1", {"a": 1, "b": 2})) == expected


# -- User.com: a 2xx with no published body ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ok"), [("", True), ('{"status": "ok"}', True), ('{"status": "queued"}', False), ("[1]", False)]
)
def test_usercom_mass_update_accepts_an_empty_or_ok_answer_only(make_client, fake, body, ok):
    fake.post(USERCOM_MASS, body=body)
    results = list(make_client("usercom").mass_update("vip", True, [1, 2]))
    assert all(r.ok is ok for r in results) and (ok or all(r.retryable for r in results))


# -- not the data's fault ------------------------------------------------------------------------------------------

ROUTES = {
    "dx": (DX, [f"u{i}@b.co" for i in range(50)], {}),
    "altatech": (ALTATECH, [f"u{i}" for i in range(50)], {}),
    "fyno": (FYNO, [f"d{i}" for i in range(50)], {"workspace_id": "ws-0123456789", "batch_size": 100}),
    "usercom": (USERCOM_MASS, list(range(1, 51)), {}),
}


@pytest.mark.parametrize("vendor", sorted(ROUTES))
@pytest.mark.parametrize(
    ("status", "body"),
    [(404, '{"detail": "Not found."}'), (404, "<html>Not Found</html>"), (405, '{"detail": "Method not allowed"}')],
)
def test_a_route_or_method_the_vendor_lacks_stops_the_sync_naming_the_url(make_client, fake, vendor, status, body):
    url, ids, settings = ROUTES[vendor]
    fake.post(url, status=status, body=body)
    with pytest.raises(VendorEndpointError) as raised:
        list(make_client(vendor, **settings).mass_update("vip", "gold", ids))
    assert url in str(raised.value) and "token" not in str(raised.value).lower()
    assert len(fake.calls) <= 4  # never split nor sent user by user (a Fyno 404 used to cost 57 calls)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_timeouts_and_server_errors_are_retried_then_failed_never_rejected(make_client, fake, clock, status):
    fake.post(FYNO, status=status, json={"_message": "try later", "status": "error"})
    client = make_client("fyno", workspace_id="ws-0123456789", batch_size=10, max_attempts=3)
    results = list(client.update_users(UserUpdate(f"d{i}", {"a": i}) for i in range(10)))
    assert len(fake.calls) == 3  # one batch, three attempts, never split
    assert all(r.retryable and not r.ok for r in results)
    assert f"HTTP {status}" in results[0].failures[0].reason


def test_a_rate_limit_code_in_a_200_body_is_a_throttle(make_client, fake, clock):
    fake.post(ALTATECH, status=200, json={"code": 42900, "message": "rate limit exceeded"})
    fake.post(ALTATECH, json={"success_update": [{"property_name": "a"}]})
    client = make_client("altatech")
    assert client.update_user("u1", {"a": 1}).ok
    assert client.stats().throttled_requests == 1 and len(fake.calls) == 2


def test_dx_rate_limited_in_the_body_is_retried_and_counted_throttled(make_client, fake, clock):
    fake.post(DX, status=422, json={"ok": False, "error": "rate_limited"})
    fake.post(DX, json={"ok": True, "user": {"attributes": [dx_attribute("a", "1")]}})
    client = make_client("dx")
    assert client.update_user("a@b.co", {"a": "1"}).ok and client.stats().throttled_requests == 1


def test_usercom_unknown_user_404_is_the_records_fault_once_the_api_is_known_there(make_client, fake):
    fake.post(USERCOM_USER, status=404, json={"detail": "Not found."})
    fake.post(USERCOM_MASS, status=400, json={"ids": ["This list may not be empty."]})  # the probe: API is there
    (attribute,) = make_client("usercom").update_user(7, {"vip": "gold"}).results
    assert attribute.outcome is Outcome.REJECTED and attribute.reason == "User.com: no user with this id in the app"
    assert [c.request.url for c in fake.calls] == [USERCOM_USER, USERCOM_MASS]


def test_usercom_404_everywhere_is_a_wrong_base_url(make_client, fake):
    fake.post(USERCOM_USER, status=404, json={"detail": "Not found."})
    fake.post(USERCOM_MASS, status=404, json={"detail": "Not found."})
    with pytest.raises(VendorEndpointError, match="set_multiple_attributes"):
        make_client("usercom").update_user(7, {"vip": "gold"})


@pytest.mark.parametrize("accepted", ["PUT", "POST"])
def test_usercom_mass_update_finds_the_method_the_account_takes_and_keeps_it(make_client, fake, accepted):
    def answer(request):
        if request.method != accepted:
            return 405, {"Allow": accepted}, json.dumps({"detail": f'Method "{request.method}" not allowed.'})
        return 200, {}, json.dumps({"status": "ok"})

    fake.add_callback("POST", USERCOM_MASS, answer)
    fake.add_callback("PUT", USERCOM_MASS, answer)
    client = make_client("usercom", mass_update_chunk_size=10, concurrency=1)
    results = list(client.mass_update("vip", "gold", range(1, 31)))
    assert all(r.ok for r in results) and len(results) == 30
    methods = [c.request.method for c in fake.calls]
    assert methods.count("PUT" if accepted == "POST" else "POST") == (0 if accepted == "POST" else 1)
    assert methods[-1] == accepted and len(methods) == 3 + (accepted == "PUT")


def test_usercom_mass_update_refused_with_both_methods_is_a_configuration_error(make_client, fake):
    fake.post(USERCOM_MASS, status=405, json={"detail": 'Method "POST" not allowed.'}, headers={"Allow": "PUT"})
    fake.add(
        "PUT", USERCOM_MASS, lambda request: (405, {"Allow": "GET"}, '{"detail": "Method \\"PUT\\" not allowed."}')
    )
    with pytest.raises(VendorEndpointError, match="method is not allowed"):
        list(make_client("usercom").mass_update("vip", "gold", [1, 2]))


# -- a vendor that echoes the token ------------------------------------------------------------------------------


def test_a_token_the_vendor_echoes_is_in_no_reason_and_no_error(make_client, fake):
    from airflow_provider_userattrs.errors import VendorAuthError
    from tests.client.fakes import TOKEN

    fake.post(DX, status=422, json={"ok": False, "error": f"bad_request for token {TOKEN}"})
    (attribute,) = make_client("dx").update_user("a@b.co", {"a": "1"}).results
    assert attribute.outcome is Outcome.REJECTED and TOKEN not in attribute.reason and "***" in attribute.reason
    fake.routes.clear()
    fake.post(DX, status=401, json={"detail": f"Invalid token {TOKEN}"})
    with pytest.raises(VendorAuthError) as raised:
        make_client("dx").update_user("a@b.co", {"a": "1"})
    assert TOKEN not in str(raised.value) and "***" in str(raised.value)
    ok, message = make_client("dx").test_connection()
    assert not ok and TOKEN not in message
