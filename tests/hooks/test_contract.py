"""The vendors' contract, read line by line (issue 12): nothing is delivered unless the answer says so,
refusals are classified by what they are about, batches are split only where splitting can help, and
reasons group across users. Each test here failed on the code before that issue."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_userattrs.config import HookSettings, parse_settings
from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.results import Outcome, UserUpdate

BASE = "http://127.0.0.1:9"
FYNO_BATCH = f"{BASE}/v1/ws-0123456789/live/profiles/properties/batch"
USERCOM_MASS = f"{BASE}/api/public/users/mass_update_custom_attributes/"
DX_UPDATE = f"{BASE}/users.attributes.update"
ALTATECH_UPDATE = f"{BASE}/v1/property/update"
FYNO = {"workspace_id": "ws-0123456789"}


def outcomes(result):
    return {r.attribute: r.outcome for r in result.results}


# -- item 2: User.com refusals of what every id shares cost one call --------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        {"attribute": ["Object with name=churn_risk does not exist."]},
        {"value": ["Not a valid boolean."]},
        {"non_field_errors": ["Invalid data."]},
        {"detail": "Bad request"},
    ],
)
def test_usercom_refusal_of_attribute_or_value_rejects_the_chunk_after_one_call(fake, make_hook, refusal):
    hook = make_hook("usercom", mass_update_chunk_size=50)
    fake.post(USERCOM_MASS, status=400, json=refusal)
    results = list(hook.mass_update("churn_risk", True, range(1, 51)))
    assert len(fake.calls) == 1  # was 99: split in halves down to single ids
    assert len(results) == 50 and all(not r.ok and not r.retryable for r in results)
    reasons = {r.failures[0].reason for r in results}
    assert len(reasons) == 1 and "every user" in reasons.pop()


def test_usercom_unknown_ids_dropped_at_once_with_one_reason_for_all(fake, make_hook):
    hook = make_hook("usercom", mass_update_chunk_size=10)

    def answer(request):
        ids = json.loads(request.body)["ids"]
        bad = [i for i in ids if i % 7 == 0]
        if bad:
            return 400, {}, json.dumps({"ids": [f"Users with ids {bad} do not exist."]})
        return 200, {}, json.dumps({"status": "ok"})

    fake.add_callback("POST", USERCOM_MASS, callback=answer)
    results = list(hook.mass_update("vip", "gold", range(1, 31)))
    failed = sorted(r.user_id for r in results if not r.ok)
    assert failed == [7, 14, 21, 28]
    # Three chunks: each refused once and resent once without its unknown ids.
    assert len(fake.calls) == 6
    # One reason for the cause, whichever ids the vendor listed with it (was "Users with ids [7, 14] ...").
    assert {r.failures[0].reason for r in results if not r.ok} == {"User.com: no user with this id in the app"}


def test_unattributable_batch_refusal_is_split_within_a_budget_and_nothing_is_lost(fake, make_hook):
    hook = make_hook("fyno", extra=FYNO, batch_size=100)
    fake.post(FYNO_BATCH, status=400, json={"_message": "$set has object/keys that is not allowed", "status": "error"})
    results = list(hook.update_users(UserUpdate(f"d{i}", {"a": i}) for i in range(100)))
    assert len(results) == 100
    # 2n-1 = 199 calls before; now 1 + 8 calls per halving level (7 levels for 100).
    assert len(fake.calls) == 1 + 8 * 7
    rejected = [r for r in results if not r.ok and not r.retryable]
    unsettled = [r for r in results if r.retryable]
    assert len(rejected) + len(unsettled) == 100 and rejected and unsettled
    assert "ran out" in unsettled[0].failures[0].reason


# -- item 3: connection settings parsed once, with errors that name the field ----------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"concurrency": "lots"}, "concurrency"),
        ({"concurrency": 0}, "concurrency"),
        ({"read_timeout": "soon"}, "read_timeout"),
        ({"verify_ssl": "maybe"}, "verify_ssl"),
        ({"attribute_types": {"ltv": "money"}}, "attribute_types"),
        ({"version": "staging"}, "version"),
    ],
)
def test_a_bad_extra_is_an_error_naming_the_field(extra, field):
    with pytest.raises(ConnectionConfigError, match=f"'{field}' must be") as raised:
        parse_settings(extra, where="DX connection 'crm'")
    assert "DX connection 'crm'" in str(raised.value) and "default" in str(raised.value)


def test_null_means_the_default():
    settings = parse_settings({"connect_timeout": None, "concurrency": None, "requests_per_second": ""}, where="x")
    assert settings == HookSettings()
    assert settings.connect_timeout == 5.0 and settings.concurrency == 32


def test_text_values_from_the_connection_form_are_read():
    settings = parse_settings(
        {"concurrency": "8", "verify_ssl": "false", "attribute_types": '{"ltv": "number"}'}, where="x"
    )
    assert settings.concurrency == 8 and settings.verify_ssl is False and settings.attribute_types == {"ltv": "number"}


def test_unknown_extra_is_a_warning_and_unknown_hook_param_an_error(caplog):
    with caplog.at_level(logging.WARNING):
        parse_settings({"concurency": 4}, where="DX connection 'crm'")
    assert "concurency" in caplog.text
    with pytest.raises(ConnectionConfigError, match="concurency"):
        parse_settings({}, {"concurency": 4}, where="DX connection 'crm'")


def test_connection_problems_surface_before_any_request(make_hook, fake):
    with pytest.raises(ConnectionConfigError, match="workspace_id"):
        make_hook("fyno").check_config()
    with pytest.raises(ConnectionConfigError, match="concurrency"):
        make_hook("dx", extra={"concurrency": "lots"}, concurrency=None).check_config()
    assert fake.calls == []


# -- item 4: only the documented success is delivery ------------------------------------------------------


@pytest.mark.parametrize("body", ["", '{"request_id": "r"}', '{"status": "ok"}'])
@pytest.mark.parametrize("vendor", ["fyno", "usercom", "dx", "altatech"])
def test_a_redirect_is_never_delivery(fake, make_hook, vendor, body):
    url = {"fyno": FYNO_BATCH, "usercom": f"{BASE}/api/public/users/1/set_multiple_attributes/"}.get(vendor)
    url = url or {"dx": DX_UPDATE, "altatech": ALTATECH_UPDATE}[vendor]
    hook = make_hook(vendor, extra=FYNO if vendor == "fyno" else None)
    fake.post(url, status=301, body=body, headers={"Location": "https://elsewhere.example/x"})
    user = {"fyno": "d1", "usercom": 1, "dx": "a@b.co", "altatech": "u1"}[vendor]
    result = hook.update_user(user, {"plan": "pro"})
    (attribute,) = result.results
    assert attribute.outcome is Outcome.FAILED and "redirect" in attribute.reason
    assert "elsewhere.example" in attribute.reason and "host" in attribute.reason


@pytest.mark.parametrize(
    "failures",
    [
        [{"name": "Tenure", "error": "invalid_value"}],
        [{"attribute": "Tenure", "message": "invalid_value"}],
        ["Tenure"],
    ],
)
def test_dx_failure_entries_of_every_plausible_shape_are_attributed(fake, make_hook, failures):
    hook = make_hook("dx")
    team = {"name": "Team", "value": "core", "updated": True}
    fake.post(DX_UPDATE, json={"ok": True, "user": {"failures": failures, "attributes": [team]}})
    result = hook.update_user("a@b.co", {"Tenure": 5, "Team": "core"})
    assert outcomes(result) == {"Tenure": Outcome.REJECTED, "Team": Outcome.DELIVERED}


@pytest.mark.parametrize("failures", [[{"code": 7}], [42], [{"error": "invalid_value"}]])
def test_dx_failure_naming_no_attribute_delivers_nothing(fake, make_hook, failures):
    hook = make_hook("dx")
    fake.post(DX_UPDATE, json={"ok": True, "user": {"failures": failures}})
    result = hook.update_user("a@b.co", {"Tenure": 5, "Team": "core"})
    assert set(outcomes(result).values()) == {Outcome.REJECTED}
    assert "naming no attribute" in result.results[0].reason


@pytest.mark.parametrize(
    "body",
    [{"code": 40000, "message": "parameter error"}, {"error": {"code": 40000, "message": "parameter error"}}],
)
def test_altatech_error_body_in_a_2xx_is_a_rejection(fake, make_hook, body):
    hook = make_hook("altatech")
    fake.post(ALTATECH_UPDATE, status=200, json=body)
    result = hook.update_user("u1", {"plan": "pro"})
    (attribute,) = result.results
    assert attribute.outcome is Outcome.REJECTED and "parameter error" in attribute.reason


def test_altatech_service_error_code_in_a_2xx_is_retryable(fake, make_hook):
    hook = make_hook("altatech")
    fake.post(ALTATECH_UPDATE, status=200, json={"code": 50000, "message": "internal error"})
    assert hook.update_user("u1", {"plan": "pro"}).results[0].outcome is Outcome.FAILED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Documented (vendor-notes): one item per entry, keyed by operation, naming no user; only "ok".
        ({"request_id": "r", "batch": [{"$set": "ok"}, {"$set": "ok"}]}, ["ok", "ok"]),
        ({"request_id": "r", "batch": [{"$set": "ok"}, {"$set": "error"}]}, ["ok", "retry"]),
        # Plausible shapes that name the user or carry a status: read too; anything but "ok" is not confirmed.
        ({"request_id": "r", "results": [{"status": "ok"}, {"status": "error", "_message": "bad"}]}, ["ok", "retry"]),
        ({"request_id": "r", "batch": [{"success": True}, {"success": False, "error": "bad"}]}, ["ok", "retry"]),
        ({"request_id": "r", "batch": [{"distinct_id": "d1", "$set": "ok"}]}, ["retry", "ok"]),
        ({"request_id": "r", "results": ["ok", "failed"]}, ["ok", "retry"]),
        ({"request_id": "r"}, ["ok", "ok"]),
        ({"request_id": "r", "results": [{"status": "ok"}, {"weird": 1}]}, ["ok", "retry"]),
        # Fewer items than users, naming none: nobody can tell whose item it is.
        ({"request_id": "r", "results": [{"status": "ok"}]}, ["retry", "retry"]),
        # No request_id: the answer confirms nothing.
        ({"batch": [{"$set": "ok"}, {"$set": "ok"}]}, ["retry", "retry"]),
    ],
)
def test_fyno_per_item_status_in_every_plausible_shape(fake, make_hook, body, expected):
    hook = make_hook("fyno", extra=FYNO, batch_size=2)
    fake.post(FYNO_BATCH, status=202, json=body)
    results = {r.user_id: r for r in hook.update_users([UserUpdate("d0", {"a": 1}), UserUpdate("d1", {"a": 2})])}
    seen = ["ok" if r.ok else "retry" if r.retryable else "no" for r in (results["d0"], results["d1"])]
    assert seen == expected


def test_fyno_202_with_an_error_status_is_not_delivery(fake, make_hook):
    hook = make_hook("fyno", extra=FYNO)
    fake.post(FYNO_BATCH, status=202, json={"status": "error", "_message": "something"})
    assert hook.update_user("d0", {"a": 1}).results[0].outcome is Outcome.FAILED


# -- item 5: DX errors about the service are retryable ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (422, "internal_error", Outcome.FAILED),
        (200, "service_unavailable", Outcome.FAILED),
        (422, "fatal_error", Outcome.FAILED),
        (500, "something_new", Outcome.FAILED),
        (422, "user_not_found", Outcome.REJECTED),
        (422, "something_new", Outcome.REJECTED),
    ],
)
def test_dx_ok_false_is_retryable_when_about_the_service(fake, make_hook, status, error, outcome):
    hook = make_hook("dx", max_attempts=1)
    fake.post(DX_UPDATE, status=status, json={"ok": False, "error": error})
    assert hook.update_user("a@b.co", {"a": "1"}).results[0].outcome is outcome
