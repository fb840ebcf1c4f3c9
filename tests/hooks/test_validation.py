"""Validation before sending: each bad value is rejected with a reason naming user, attribute and rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_provider_userattrs.hooks import altatech, dx, fyno, usercom
from airflow_provider_userattrs.hooks.validation import Validator
from airflow_provider_userattrs.results import Outcome, UserUpdate

FYNO = Validator(fyno.RULES)
DX = Validator(dx.RULES)
ALTA = Validator(altatech.RULES)
USERCOM = Validator(usercom.RULES)


def reasons(validator: Validator, user_id, attributes):
    sendable, problems = validator.validate(UserUpdate(user_id, attributes))
    return sendable, {p.attribute: p for p in problems}


@pytest.mark.parametrize(
    "value",
    [
        "2020-10-01T18:30:00.000Z",
        "2020-10-01T18:30:00Z",
        "2020-10-01T18:30:00.000+05:30",
        "2020-10-01T18:30:00+02:00",
        "2020-10-01",
        "Premium",
        23000,
        20.34,
        True,
        ["iPhone 16 Pro", "iPad 32 GB"],
        [23000, 20.34],
        ["2020-10-01T18:30:00Z", "2021-11-01T13:35:00+02:00", "2023-12-05"],
    ],
)
def test_fyno_accepts_every_type_the_seed_lists(value):
    sendable, problems = reasons(FYNO, "u1", {"p": value})
    assert problems == {}
    assert sendable is not None and sendable.attributes == {"p": value}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("x" * 256, "256 characters long; Fyno accepts at most 255"),
        ("2024-13-45", "not a valid ISO 8601 date"),
        ("2020-10-01T25:00:00Z", "not a valid ISO 8601 date"),
        ({"nested": 1}, "not a type Fyno accepts"),
        (["ok", {"nested": 1}], "not a type Fyno accepts"),
        (float("nan"), "NaN and Infinity are refused"),
        (float("inf"), "NaN and Infinity are refused"),
        (b"bytes", "type bytes are not supported"),
    ],
)
def test_fyno_rejects_bad_values_with_a_reason(value, fragment):
    sendable, problems = reasons(FYNO, "u1", {"bad": value, "good": "fine"})
    assert sendable is not None and sendable.attributes == {"good": "fine"}  # the rest still goes
    assert problems["bad"].outcome is Outcome.REJECTED
    assert fragment in problems["bad"].reason
    assert problems["bad"].reason.startswith("bad:")  # names the attribute
    assert problems["bad"].user_id == "u1"  # and the user


def test_warehouse_types_are_normalised():
    sendable, problems = reasons(
        FYNO,
        "u1",
        {
            "ltv": Decimal("12.50"),
            "orders": Decimal("3"),
            "since": dt.date(2024, 2, 29),
            "seen": dt.datetime(2024, 2, 29, 10, 0, 0),
            "seen_tz": dt.datetime(2024, 2, 29, 10, 0, 0, tzinfo=dt.UTC),
        },
    )
    assert problems == {}
    assert sendable.attributes == {
        "ltv": 12.5,
        "orders": 3,
        "since": "2024-02-29",
        "seen": "2024-02-29T10:00:00Z",
        "seen_tz": "2024-02-29T10:00:00+00:00",
    }


def test_null_semantics_per_vendor():
    # DX and Fyno can remove an attribute: NULL is sent.
    for validator in (DX, FYNO, USERCOM):
        uid = {DX: "a@b.co", FYNO: "u1", USERCOM: 5}[validator]
        sendable, problems = reasons(validator, uid, {"gone": None})
        assert problems == {} and sendable.attributes == {"gone": None}
    # AltaTech cannot: the NULL is skipped, with a reason, never silently.
    sendable, problems = reasons(ALTA, "u1", {"gone": None, "kept": 1})
    assert sendable.attributes == {"kept": 1}
    assert problems["gone"].outcome is Outcome.SKIPPED and "AltaTech" in problems["gone"].reason


@pytest.mark.parametrize(
    ("validator", "user_id", "ok"),
    [
        (ALTA, "x" * 32, True),
        (ALTA, "x" * 33, False),
        (ALTA, "", False),
        (ALTA, 42, True),
        (DX, "john.doe@example.com", True),
        (DX, "not-an-email", False),
        (DX, 12, False),
        (USERCOM, 10, True),
        (USERCOM, "15", True),
        (USERCOM, "15a", False),
        (USERCOM, 0, False),
        (USERCOM, -3, False),
        (USERCOM, True, False),
        (USERCOM, 1.5, False),
        (FYNO, "d-1", True),
        (FYNO, None, False),
    ],
)
def test_user_ids(validator, user_id, ok):
    sendable, problems = reasons(validator, user_id, {"a": "b"})
    assert (sendable is not None) is ok
    if not ok:
        assert problems["a"].outcome is Outcome.REJECTED
        assert "user id" in problems["a"].reason


def test_usercom_coerces_digit_strings_to_integer_ids():
    sendable, _ = reasons(USERCOM, "0015", {"a": 1})
    assert sendable.user_id == 15


def test_attribute_names_must_be_1_to_255_characters():
    sendable, problems = reasons(USERCOM, 1, {"": 1, "n" * 256: 2, "ok": 3})
    assert sendable.attributes == {"ok": 3}
    assert set(problems) == {"", "n" * 256}
    assert all("must be 1 to 255 characters" in p.reason for p in problems.values())


def test_lists_are_refused_where_the_vendor_has_no_list_type():
    for validator, uid in ((DX, "a@b.co"), (USERCOM, 1)):
        _, problems = reasons(validator, uid, {"tags": ["a", "b"]})
        assert problems["tags"].outcome is Outcome.REJECTED


def test_declared_attribute_types_catch_type_mismatches_fyno_would_silently_ignore():
    validator = Validator(fyno.RULES, {"ltv": "number", "member_since": "date"})
    sendable, problems = reasons(validator, "u1", {"ltv": "ABC", "member_since": "yesterday", "vip": "gold"})
    assert sendable.attributes == {"vip": "gold"}
    assert "is not a number" in problems["ltv"].reason
    assert "member_since" in problems


def test_unknown_declared_type_is_a_configuration_error():
    with pytest.raises(ValueError, match="unknown type"):
        Validator(fyno.RULES, {"x": "timestamp"})


def test_huge_values_are_refused_and_not_copied_whole_into_the_report():
    _, problems = reasons(DX, "a@b.co", {"blob": "x" * 10_000_000})
    problem = problems["blob"]
    assert "10000000 characters long" in problem.reason
    assert len(problem.value) < 2000


# The verdict cache must never change a verdict: compare with plain JSON Schema on random values.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402

_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"\d{4}-\d{2}-\d{2}.{0,12}", fullmatch=True),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_values, min_size=1, max_size=20))
def test_cached_verdicts_equal_plain_json_schema(values):
    for rules in (fyno.RULES, dx.RULES, usercom.RULES, altatech.RULES):
        validator = Validator(rules)
        plain = Draft202012Validator(rules.value_schema, format_checker=FormatChecker())
        for value in values:  # the same validator instance, so later values hit the cache
            sendable, _ = validator.validate(UserUpdate(validator_user(rules), {"a": value}))
            assert (sendable is not None) == plain.is_valid(value), (rules.vendor_label, value)


def validator_user(rules):
    return {"AltaTech": "u1", "Fyno": "u1", "DX": "a@b.co", "User.com": 1}[rules.vendor_label]
