"""Values arrive exactly: a warehouse's NUMERIC keeps its digits, and a value nothing can check or write is
that record's rejection, never the task's crash."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from airflow_provider_userattrs.client import payload
from airflow_provider_userattrs.client.validation import Validator
from airflow_provider_userattrs.client.vendors import altatech, dx, fyno, usercom
from airflow_provider_userattrs.client.vendors.dx import as_dx_value
from airflow_provider_userattrs.results import Outcome, UserUpdate

BASE = "http://127.0.0.1:9"
USERS = {"altatech": "u1", "fyno": "d1", "dx": "a@b.co", "usercom": 7}
SETTINGS = {"fyno": {"workspace_id": "ws-0123456789"}}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12345678901234567.12"), "12345678901234567.12"),
        (Decimal("0.1") + Decimal("0.2"), "0.3"),
        (Decimal("1E+21"), "1000000000000000000000"),
        (1e21, "1000000000000000000000"),
        (0.1, "0.1"),
        (5, "5"),
        (True, "true"),
        (Decimal("-0.000001"), "-0.000001"),
    ],
)
def test_dx_receives_the_exact_digits_as_text(value, text):
    assert as_dx_value(value) == text


def test_payload_writes_decimals_as_exact_json_numbers_and_reads_them_back():
    body = {"values": [Decimal("12345678901234567.12"), Decimal("1E+21"), "\x00not a marker\x00", 1.5]}
    text = payload.dumps(body)
    assert text == '{"values": [12345678901234567.12, 1000000000000000000000, "\\u0000not a marker\\u0000", 1.5]}'
    assert payload.loads(text)["values"][0] == Decimal("12345678901234567.12")


@pytest.mark.parametrize("vendor", ["altatech", "usercom", "dx", "fyno"])
def test_a_numeric_value_goes_out_with_its_digits(make_client, fake, vendor):
    sent = []

    def answer(request):
        sent.append(request.body.decode())
        return {
            "altatech": (200, {}, json.dumps({"success_update": [{"property_name": "ltv"}]})),
            "usercom": (200, {}, "{}"),
            "dx": (200, {}, json.dumps({"ok": True, "user": {"attributes": [{"name": "ltv", "updated": True}]}})),
            "fyno": (202, {}, json.dumps({"request_id": "r", "batch": [{"$set": "ok"}]})),
        }[vendor]

    fake.add_callback("POST", re.compile(".*"), answer)
    value = Decimal("1234.5678") if vendor == "fyno" else Decimal("12345678901234567.12")
    result = make_client(vendor, **SETTINGS.get(vendor, {})).update_user(USERS[vendor], {"ltv": value})
    assert result.ok, result
    digits = str(value)
    assert digits in sent[0] and "e+" not in sent[0].lower()
    if vendor == "dx":
        assert f'"value": "{digits}"' in sent[0]  # DX takes text
    else:
        assert f'"{digits}"' not in sent[0]  # a JSON number, not text


@pytest.mark.parametrize(
    "value", [Decimal("12345678901234567.12"), 2**53 + 1, [1, 2**60 + 1], Decimal("0.1000000000000000000001")]
)
def test_fyno_refuses_a_number_a_double_would_change(value):
    sendable, problems = Validator(fyno.RULES).validate(UserUpdate("d1", {"ltv": value}))
    assert sendable is None and problems[0].outcome is Outcome.REJECTED and "doubles" in problems[0].reason


@pytest.mark.parametrize(
    "value", [Decimal("0.1"), Decimal("19.99"), 2**53, 2**60, Decimal("-7.25"), 0.30000000000000004]
)
def test_fyno_takes_a_number_a_double_carries_with_its_digits(value):
    sendable, problems = Validator(fyno.RULES).validate(UserUpdate("d1", {"ltv": value}))
    assert not problems and sendable is not None


def test_a_number_declared_text_is_sent_as_its_exact_digits():
    validator = Validator(fyno.RULES, {"ltv": "string"})
    sendable, problems = validator.validate(UserUpdate("d1", {"ltv": Decimal("12345678901234567.12")}))
    assert not problems and sendable is not None and sendable.attributes == {"ltv": "12345678901234567.12"}


@pytest.mark.parametrize("rules", [altatech.RULES, fyno.RULES, dx.RULES, usercom.RULES], ids=lambda r: r.vendor_label)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("1e5000"), "more than 1,000 digits"),
        (10**5000, "more than 1,000 digits"),
        ("caf\udce9", "not valid Unicode"),
        (Decimal("NaN"), "NaN and Infinity"),
    ],
    ids=["decimal-1e5000", "int-5001-digits", "lone-surrogate", "nan"],
)
def test_a_value_nothing_can_write_is_that_records_rejection(rules, value, reason):
    user = {"AltaTech": "u1", "Fyno": "d1", "DX": "a@b.co", "User.com": 7}[rules.vendor_label]
    sendable, problems = Validator(rules).validate(UserUpdate(user, {"bad": value, "good": "fine"}))
    assert sendable is not None and sendable.attributes == {"good": "fine"}  # the user's other values still go
    (problem,) = problems
    assert problem.outcome is Outcome.REJECTED and reason in problem.reason
    json.dumps(problem.to_dict())  # the failure line can be written: the value is shown in a writable form


@pytest.mark.parametrize("rules", [altatech.RULES, fyno.RULES], ids=lambda r: r.vendor_label)
def test_a_user_id_that_is_not_valid_unicode_is_refused(rules):
    sendable, problems = Validator(rules).validate(UserUpdate("u\ud800", {"a": "fine"}))
    assert sendable is None and "not valid Unicode" in problems[0].reason
    json.dumps(problems[0].to_dict())
