"""Validation before sending: refuse only what the vendor would refuse or silently drop, with reasons a person
can group (one text per cause; the user, the attribute and the value are in their own fields)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_provider_userattrs.client.validation import Validator, VendorRules, format_checker
from airflow_provider_userattrs.client.vendors import altatech, dx, fyno, usercom
from airflow_provider_userattrs.results import Outcome, UserUpdate

FYNO = Validator(fyno.RULES)
DX = Validator(dx.RULES)
ALTA = Validator(altatech.RULES)
USERCOM = Validator(usercom.RULES)

ALL_RULES = {"altatech": altatech.RULES, "fyno": fyno.RULES, "dx": dx.RULES, "usercom": usercom.RULES}
GOOD_ID = {"altatech": "u1", "fyno": "u1", "dx": "a@b.co", "usercom": 1}
CALENDAR = "not a real calendar date or time"


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
    ("value", "reason"),
    [
        ("x" * 256, "longer than 255 characters (Fyno's limit for strings)"),
        ("2024-13-45", CALENDAR),
        ("2020-10-01T25:00:00Z", CALENDAR),
        ({"nested": 1}, "dict values are not accepted by Fyno"),
        (["ok", {"nested": 1}], "dict values are not accepted by Fyno"),
        (["ok", "2023-02-30"], CALENDAR),  # list items are typed by value too (seed: lists of dates)
        (float("nan"), "NaN and Infinity cannot be sent (not valid JSON numbers)"),
        (float("inf"), "NaN and Infinity cannot be sent (not valid JSON numbers)"),
        (Decimal("NaN"), "NaN and Infinity cannot be sent (not valid JSON numbers)"),
        (b"bytes", "bytes values are not supported"),
    ],
)
def test_fyno_rejects_bad_values_with_a_reason(value, reason):
    sendable, problems = reasons(FYNO, "u1", {"bad": value, "good": "fine"})
    assert sendable is not None and sendable.attributes == {"good": "fine"}  # the rest still goes
    assert problems["bad"].outcome is Outcome.REJECTED
    assert problems["bad"].reason.startswith(reason)
    assert problems["bad"].attribute == "bad" and problems["bad"].user_id == "u1"  # in their own fields


# -- issue 12, item 1: text that starts with a date ----------------------------------------------------------

FREE_TEXT_WITH_A_DATE = ["2024-01-01 launch cohort", "2024-01-01 12:00:00", "2020-10-01T18:30"]


@pytest.mark.parametrize("vendor", sorted(ALL_RULES))
@pytest.mark.parametrize("value", FREE_TEXT_WITH_A_DATE)
def test_text_starting_with_a_date_is_delivered_unchanged_for_every_vendor(vendor, value):
    sendable, problems = reasons(Validator(ALL_RULES[vendor]), GOOD_ID[vendor], {"cohort": value})
    assert problems == {}
    assert sendable is not None and sendable.attributes == {"cohort": value}


@pytest.mark.parametrize("value", ["2023-02-30", "2024-13-45", "2024-01-01 25:61", "2021-06-00T10:00:00Z"])
def test_an_impossible_date_is_refused_where_fyno_would_store_it_as_a_date(value):
    sendable, problems = reasons(FYNO, "u1", {"last_purchase_date": value})
    assert sendable is None
    assert problems["last_purchase_date"].outcome is Outcome.REJECTED
    assert problems["last_purchase_date"].reason.startswith(CALENDAR)


@pytest.mark.parametrize("vendor", ["altatech", "dx", "usercom"])
def test_an_impossible_date_is_delivered_as_text_where_the_vendor_does_not_type_dates(vendor):
    assert not ALL_RULES[vendor].types_dates
    sendable, problems = reasons(Validator(ALL_RULES[vendor]), GOOD_ID[vendor], {"last_purchase_date": "2023-02-30"})
    assert problems == {}
    assert sendable is not None and sendable.attributes == {"last_purchase_date": "2023-02-30"}


@pytest.mark.parametrize("vendor", sorted(ALL_RULES))
@pytest.mark.parametrize("declared", ["date", "datetime"])
def test_a_declared_date_refuses_impossible_dates_and_free_text_for_every_vendor(vendor, declared):
    validator = Validator(ALL_RULES[vendor], {"since": declared})
    for value in ("2023-02-30", "2024-01-01 25:61"):
        _, problems = reasons(validator, GOOD_ID[vendor], {"since": value})
        assert problems["since"].reason.startswith(CALENDAR), (vendor, value)
    _, problems = reasons(validator, GOOD_ID[vendor], {"since": "yesterday"})
    assert problems["since"].reason.startswith(f"not a {declared}")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-01 12:00:00", "2024-01-01T12:00:00Z"),  # naive: taken as UTC, as for datetime objects
        ("2024-01-01T12:00", "2024-01-01T12:00:00Z"),
        ("2024-01-01 12:00", "2024-01-01T12:00:00Z"),
        ("2024-01-01T12:00:00", "2024-01-01T12:00:00Z"),
        ("2024-01-01 12:00:00+02", "2024-01-01T12:00:00+02:00"),  # PostgreSQL's text of a timestamptz
        ("2024-01-01 12:00:00.250+0530", "2024-01-01T12:00:00.250000+05:30"),
        # already in a form Fyno's seed lists: sent as given
        ("2020-10-01", "2020-10-01"),
        ("2020-10-01T18:30:00.000Z", "2020-10-01T18:30:00.000Z"),
        ("2020-10-01T18:30:00+02:00", "2020-10-01T18:30:00+02:00"),
    ],
)
@pytest.mark.parametrize("declared", ["date", "datetime"])
def test_a_declared_fyno_date_given_as_text_is_normalised_to_iso_8601(declared, text, iso):
    validator = Validator(fyno.RULES, {"member_since": declared})
    sendable, problems = reasons(validator, "u1", {"member_since": text, "note": text})
    assert problems == {}
    assert sendable is not None
    assert sendable.attributes == {"member_since": iso, "note": text}  # only the declared attribute changes


@pytest.mark.parametrize("vendor", ["altatech", "dx", "usercom"])
def test_a_declared_date_is_delivered_unchanged_where_the_vendor_does_not_type_dates(vendor):
    validator = Validator(ALL_RULES[vendor], {"member_since": "datetime"})
    sendable, problems = reasons(validator, GOOD_ID[vendor], {"member_since": "2024-01-01 12:00:00"})
    assert problems == {}
    assert sendable is not None and sendable.attributes == {"member_since": "2024-01-01 12:00:00"}


# -- issue 12, item 6: reasons a person can group -------------------------------------------------------------

SAME_CAUSE = [
    # (vendor, declared types, (user, attribute, value) of the first case, (...) of the second)
    ("fyno", {}, ("u1", "last_purchase_date", "2023-02-30"), ("u2", "signup_day", "2024-13-45")),
    ("fyno", {}, ("u1", "full_name", "a" * 256), ("u2", "bio", "b" * 400)),
    ("fyno", {}, ("u1", "score", float("nan")), ("u2", "ratio", float("-inf"))),
    ("fyno", {}, ("u1", "meta", {"k": 1}), ("u2", "extra", {"other": [2]})),
    ("dx", {}, ("a@b.co", "tags", ["x"]), ("c@d.co", "labels", ["y", "z"])),
    ("dx", {}, ("not-an-email", "tier", "gold"), ("also bad", "plan", "pro")),
    ("altatech", {}, ("x" * 33, "tier", "gold"), ("y" * 40, "plan", "pro")),
    ("altatech", {}, (1.5, "tier", "gold"), (2.5, "plan", "pro")),
    ("usercom", {}, ("abc", "tier", "gold"), ("12x", "plan", "pro")),
    ("usercom", {}, (0, "tier", "gold"), (-7, "plan", "pro")),
    ("usercom", {}, (1, "n" * 256, "gold"), (2, "m" * 300, "pro")),
    ("usercom", {}, (1, "", "gold"), (2, "", "pro")),
    ("fyno", {"ltv": "number", "orders": "number"}, ("u1", "ltv", "ABC"), ("u2", "orders", "many")),
    ("dx", {"since": "date", "seen": "date"}, ("a@b.co", "since", "2023-02-30"), ("c@d.co", "seen", "2022-04-31")),
    ("fyno", {}, ("u1", "blob", b"raw"), ("u2", "payload", b"other")),
]


@pytest.mark.parametrize(("vendor", "declared", "first", "second"), SAME_CAUSE)
def test_one_reason_per_cause_whatever_the_user_attribute_or_value(vendor, declared, first, second):
    texts = []
    for user_id, name, value in (first, second):
        validator = Validator(ALL_RULES[vendor], declared)
        _, problems = reasons(validator, user_id, {name: value})
        problem = problems[name]
        assert problem.outcome is Outcome.REJECTED
        assert (str(problem.user_id), problem.attribute) == (str(user_id), name)  # in their own fields...
        reason = problem.reason
        for shown in (str(user_id), name, repr(value), str(value)):
            if len(shown) > 2:
                assert shown not in reason, (shown, reason)  # ...and not in the reason
        texts.append(reason)
    assert texts[0] == texts[1]


def test_a_null_user_id_has_one_reason():
    _, first = reasons(FYNO, None, {"a": 1})
    _, second = reasons(FYNO, None, {"b": "x"})
    assert first["a"].reason == second["b"].reason == "the user id is NULL"


def test_reasons_never_carry_the_value_even_when_the_rule_is_unnamed():
    # A schema keyword without a reason of its own still gives a stable text, not jsonschema's message
    # (which quotes the value).
    rules = VendorRules(
        vendor_label="Test",
        user_id_schema={"type": "string", "enum": ["allowed"]},
        value_schema={"type": "string"},
        coerce_user_id=str,
        nulls_are_sent=True,
    )
    validator = Validator(rules)
    _, first = reasons(validator, "someone", {"a": "x"})
    _, second = reasons(validator, "another", {"a": "x"})
    assert first["a"].reason == second["a"].reason
    assert "someone" not in first["a"].reason


# -- unchanged behaviour ---------------------------------------------------------------------------------------


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


def test_a_warehouse_timestamp_fits_an_attribute_declared_date():
    validator = Validator(fyno.RULES, {"since": "date", "seen": "datetime"})
    sendable, problems = reasons(validator, "u1", {"since": dt.datetime(2024, 2, 29, 10), "seen": dt.date(2024, 2, 29)})
    assert problems == {}
    assert sendable.attributes == {"since": "2024-02-29T10:00:00Z", "seen": "2024-02-29"}


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


def test_user_id_reasons_say_which_rule():
    assert (
        reasons(ALTA, "x" * 33, {"a": 1})[1]["a"].reason
        == "user id: longer than 32 characters (AltaTech's limit for user ids)"
    )
    assert reasons(ALTA, "", {"a": 1})[1]["a"].reason == "user id: empty"
    assert (
        reasons(DX, "nope", {"a": 1})[1]["a"].reason == "user id: not an email address (DX identifies users by email)"
    )
    assert reasons(USERCOM, 0, {"a": 1})[1]["a"].reason.startswith("user id: not a positive integer")


def test_usercom_coerces_digit_strings_to_integer_ids():
    sendable, _ = reasons(USERCOM, "0015", {"a": 1})
    assert sendable.user_id == 15


def test_attribute_names_must_be_1_to_255_characters():
    sendable, problems = reasons(USERCOM, 1, {"": 1, "n" * 256: 2, "ok": 3})
    assert sendable.attributes == {"ok": 3}
    assert set(problems) == {"", "n" * 256}
    assert all(p.reason == "attribute name must be 1 to 255 characters" for p in problems.values())


def test_lists_are_refused_where_the_vendor_has_no_list_type():
    for validator, uid in ((DX, "a@b.co"), (USERCOM, 1)):
        _, problems = reasons(validator, uid, {"tags": ["a", "b"]})
        assert problems["tags"].outcome is Outcome.REJECTED


def test_declared_attribute_types_catch_type_mismatches_fyno_would_silently_ignore():
    validator = Validator(fyno.RULES, {"ltv": "number", "member_since": "date"})
    sendable, problems = reasons(validator, "u1", {"ltv": "ABC", "member_since": "yesterday", "vip": "gold"})
    assert sendable.attributes == {"vip": "gold"}
    assert problems["ltv"].reason.startswith("not a number")
    assert problems["member_since"].reason.startswith("not a date")


def test_unknown_declared_type_is_a_configuration_error():
    with pytest.raises(ValueError, match="unknown type"):
        Validator(fyno.RULES, {"x": "timestamp"})


def test_huge_values_are_refused_and_not_copied_whole_into_the_report():
    _, problems = reasons(DX, "a@b.co", {"blob": "x" * 10_000_000})
    problem = problems["blob"]
    assert problem.reason == "longer than 65535 characters (DX's limit for strings)"
    assert len(problem.value) < 2000


# The verdict cache must never change a verdict: compare with plain JSON Schema on random values.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),  # beyond, Fyno's doubles rule applies (test_exact_values)
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"\d{4}-\d{2}-\d{2}.{0,12}", fullmatch=True),
    st.from_regex(
        r"[0-9]{4}-[0-3][0-9]-[0-3][0-9]([T ][0-2][0-9]:[0-6][0-9](:[0-6][0-9])?(Z|\+0[0-9])?)?", fullmatch=True
    ),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_values, min_size=1, max_size=20))
def test_cached_verdicts_equal_plain_json_schema(values):
    for rules in ALL_RULES.values():
        validator = Validator(rules, {"d": "date"})
        plain = {
            name: Draft202012Validator(validator.schema_for(name), format_checker=format_checker()) for name in "ad"
        }
        for value in values:  # the same validator instance, so later values hit the cache
            sendable, _ = validator.validate(UserUpdate(validator_user(rules), {"a": value, "d": value}))
            for name in "ad":
                sent = sendable is not None and name in sendable.attributes
                assert sent == plain[name].is_valid(value), (rules.vendor_label, name, value)


def validator_user(rules):
    return {"AltaTech": "u1", "Fyno": "u1", "DX": "a@b.co", "User.com": 1}[rules.vendor_label]
