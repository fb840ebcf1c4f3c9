"""Validation of user ids and attribute values before anything is sent.

Some vendors accept a bad value and silently drop it (Fyno ignores a value whose type does not match the
property; over-long strings are refused), so checking before sending is the only way to tell a person
which record and which field is wrong. The rules are JSON Schema (checked with a ``FormatChecker``); each
vendor contributes data (:class:`VendorRules`), not code.

Only what the vendor would refuse or silently drop is refused: free text is delivered everywhere, even when
it starts with a date (``2024-01-01 launch cohort``). A string that is entirely date-shaped but names no
real day or time (``2023-02-30``) is refused only where the vendor types dates by value
(:attr:`VendorRules.types_dates`) or where ``attribute_types`` declares the attribute a date.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from airflow_provider_userattrs.client.payload import MAX_DIGITS, exact_text, too_many_digits
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserId, UserUpdate

DATE_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
"""Text that is *entirely* a date or a date-time (matched whole): every form Fyno's seed lists, and what a
warehouse's text of a timestamp looks like (``2024-01-01 12:00:00``, ``2024-01-01T12:00``, ``...+02``).
Text that merely starts with a date (``2024-01-01 launch cohort``) is free text, for every vendor."""

SEED_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2}))?"
)
"""The forms Fyno's seed (001/003) lists for dates: ``2020-10-01``, ``2020-10-01T18:30:00Z``,
``2020-10-01T18:30:00.000+05:30``... A declared date already in one of them is sent as given."""

DATE_SHAPE_FORMAT = "userattrs-date-shape"
"""JSON Schema format: the string is entirely date-shaped (:data:`DATE_SHAPE`)."""
REAL_DATE_FORMAT = "userattrs-real-date"
"""JSON Schema format: a string that is entirely date-shaped names a real day and time (other strings pass)."""

CALENDAR_REASON = "not a real calendar date or time (ISO 8601 expected, e.g. 2020-10-01 or 2020-10-01T18:30:00Z)"
NOT_FINITE_REASON = "NaN and Infinity cannot be sent (not valid JSON numbers)"
TOO_MANY_DIGITS_REASON = f"a number of more than {MAX_DIGITS:,} digits cannot be sent"
NOT_UNICODE_REASON = "text that is not valid Unicode (a lone surrogate) cannot be sent"

REAL_DATE_CHECK: dict[str, Any] = {"format": REAL_DATE_FORMAT, "x-reason": CALENDAR_REASON}
"""Where dates are typed, a date-shaped string must be a real date: ``2023-02-30`` would not be stored."""

DATE_TYPES = frozenset({"date", "datetime"})

ATTRIBUTE_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": DATE_SHAPE_FORMAT},
    "datetime": {"type": "string", "format": DATE_SHAPE_FORMAT},
    "list": {"type": "array"},
}
"""Types a user may declare per attribute (``attribute_types``), for the vendors that cannot say.

``date`` and ``datetime`` both take a date or a date-time (a warehouse timestamp declared ``date`` is not
refused for carrying a time): the check is that the text is a real date in ISO 8601 shape; the precision the
vendor keeps is the vendor's business.
"""


def declared_schema(type_name: str) -> dict[str, Any]:
    """The schema of a declared type, with a reason that names the type (never the attribute or value)."""
    extra = "; ISO 8601 expected, e.g. 2020-10-01 or 2020-10-01T18:30:00Z" if type_name in DATE_TYPES else ""
    reason = f"not a {type_name} (as declared in attribute_types{extra})"
    typed = dict(ATTRIBUTE_TYPES[type_name], **{"x-reason": reason})
    return {"allOf": [typed, REAL_DATE_CHECK]} if type_name in DATE_TYPES else typed


def string_schema(max_length: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length}


def scalar_schema(max_length: int) -> dict[str, Any]:
    return {"anyOf": [string_schema(max_length), {"type": ["number", "boolean"]}]}


def list_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def typed_dates(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` plus the real-date check on strings and on list items (Fyno's lists hold dates too)."""
    return {"allOf": [schema, REAL_DATE_CHECK, {"items": REAL_DATE_CHECK}]}


def parse_date_text(text: str) -> dt.date | None:
    """The date (or datetime) a date-shaped text names, or None when no such day or time exists."""
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def iso_date_text(text: str) -> str:
    """A real date-time given as text in another shape (``2024-01-01 12:00:00``) in ISO 8601, naive as UTC.

    Text in a form Fyno's seed lists, free text and impossible dates are returned as given (the last are
    refused by the schema, with its reason).
    """
    if SEED_ISO_8601.fullmatch(text) or not DATE_SHAPE.fullmatch(text):
        return text
    parsed = parse_date_text(text)
    return _iso(parsed) if isinstance(parsed, dt.datetime) else text


def format_checker() -> FormatChecker:
    """The standard formats plus :data:`DATE_SHAPE_FORMAT` and :data:`REAL_DATE_FORMAT`."""
    checker = FormatChecker()
    checker.checks(DATE_SHAPE_FORMAT)(_is_date_shaped)
    checker.checks(REAL_DATE_FORMAT)(_is_real_if_dated)
    return checker


def _is_date_shaped(instance: object) -> bool:
    return not isinstance(instance, str) or DATE_SHAPE.fullmatch(instance) is not None


def _is_real_if_dated(instance: object) -> bool:
    if not isinstance(instance, str) or DATE_SHAPE.fullmatch(instance) is None:
        return True
    return parse_date_text(instance) is not None


def _date_class(text: str) -> int:
    """What the date formats can see of a string: 0 not date-shaped, 1 a real date, 2 an impossible one."""
    if DATE_SHAPE.fullmatch(text) is None:
        return 0
    return 1 if parse_date_text(text) is not None else 2


def _iso(value: dt.datetime) -> str:
    # Warehouses hand out naive timestamps: they are taken as UTC.
    return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()


@dataclass(frozen=True)
class VendorRules:
    """What one vendor accepts, as data."""

    vendor_label: str
    user_id_schema: dict[str, Any]
    value_schema: dict[str, Any]
    coerce_user_id: Callable[[Any], UserId]
    """The vendor's form of a raw id; raises TypeError/ValueError with a message that does not quote the id
    (the message becomes the reason, which must be the same for every user with the same problem)."""
    nulls_are_sent: bool
    """True where the vendor can express removal (DX ``null``, Fyno ``$unset``, User.com clears)."""
    null_skip_reason: str = ""
    attribute_name_max: int = 255
    numbers_are_doubles: bool = False
    """True where the vendor stores numbers as doubles (Fyno): a number a double cannot carry without changing
    its digits (an integer beyond 2^53 that does not survive the trip, ``12345678901234567.12``) is refused,
    unless ``attribute_types`` declares the attribute text, which sends it as its exact digits."""
    types_dates: bool = False
    """True where the vendor stores a date-shaped string as a date, so that an impossible one
    (``2023-02-30``) would be refused or silently dropped: Fyno types a new property by its first value and
    wants ISO 8601 dates (seeds 001/003). Where it is True, a string (or list item) that is entirely
    date-shaped must be a real date, and a declared ``date``/``datetime`` given as text in another shape
    (``2024-01-01 12:00:00``) is sent in ISO 8601.

    False for the others, whose seeds give no ground to refuse date text: DX values are text (seed 002);
    AltaTech takes any value (seed 000); User.com's attributes have types declared in the app, which the
    client cannot see, and seed 004 is silent on what it does with text that is not a real date, so it is
    sent and the vendor's answer decides. ``attribute_types`` declares a date where a user wants the check.
    """


class _Reject(Exception):
    """A value JSON cannot carry; the message is the reason (the same for every value of the cause)."""


def _normalize_value(value: Any) -> Any:
    """Turn warehouse types into JSON types, exactly; refuse what JSON cannot carry.

    A ``Decimal`` (NUMERIC columns) stays a Decimal, written with its own digits (:mod:`.payload`); an
    integral one becomes an int. Numbers too long to write and text that is not valid Unicode are refused.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Reject(NOT_UNICODE_REASON) from None
        return value
    if isinstance(value, int):
        if too_many_digits(value):
            raise _Reject(TOO_MANY_DIGITS_REASON)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Reject(NOT_FINITE_REASON)
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Reject(NOT_FINITE_REASON)
        if too_many_digits(value):
            raise _Reject(TOO_MANY_DIGITS_REASON)
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_normalize_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _normalize_value(v) for k, v in value.items()}
    raise _Reject(f"{type(value).__name__} values are not supported (they have no JSON form)")


class Validator:
    """Checks and normalises one :class:`UserUpdate` against a vendor's rules; no I/O.

    JSON Schema is the single source of truth, but running it for every value of a million-row sync costs
    more than sending them. Verdicts are therefore cached by what the schemas can look at: a number's or
    a boolean's type (no schema here bounds numbers), a string's length against each ``maxLength`` in
    play and, where dates are checked, whether the string is date-shaped and a real date (a regex match
    and ``fromisoformat``, far cheaper than the schema). Lists, and strings where a vendor schema has a
    pattern or format of its own, are checked one by one.

    Reasons are one text per cause: they never carry the user id, the attribute name or the value, which
    :class:`AttributeResult` holds in fields of their own, so that a person can group failures by reason.
    """

    _CACHE_LIMIT = 100_000

    def __init__(self, rules: VendorRules, attribute_types: Mapping[str, str] | None = None) -> None:
        self.rules = rules
        checker = format_checker()
        vendor_schema = typed_dates(rules.value_schema) if rules.types_dates else rules.value_schema
        self._schemas: dict[str | None, dict[str, Any]] = {None: vendor_schema}
        self._dated: set[str | None] = {None} if rules.types_dates else set()
        for name, type_name in (attribute_types or {}).items():
            if type_name not in ATTRIBUTE_TYPES:
                raise ValueError(
                    f"attribute_types[{name!r}]: unknown type {type_name!r}; use {sorted(ATTRIBUTE_TYPES)}"
                )
            self._schemas[name] = {"allOf": [vendor_schema, declared_schema(type_name)]}
            if rules.types_dates or type_name in DATE_TYPES:
                self._dated.add(name)
        self._validators = {
            name: Draft202012Validator(schema, format_checker=checker) for name, schema in self._schemas.items()
        }
        self._default = self._validators[None]
        self._normalised_dates = frozenset(
            name for name, type_name in (attribute_types or {}).items() if rules.types_dates and type_name in DATE_TYPES
        )
        self._name = Draft202012Validator(
            {"type": "string", "minLength": 1, "maxLength": rules.attribute_name_max}, format_checker=checker
        )
        self._user_id = Draft202012Validator(rules.user_id_schema, format_checker=checker)
        self._max_lengths = tuple(sorted(set(_schema_values(rules.value_schema, "maxLength"))))
        self._value_checks_text = _checks_text(rules.value_schema)
        id_schema = rules.user_id_schema
        self._id_checks_text = _checks_text(id_schema)
        self._id_max_lengths = tuple(_schema_values(id_schema, "maxLength"))
        self._id_min_lengths = tuple(_schema_values(id_schema, "minLength"))
        self._id_minimums = tuple(_schema_values(id_schema, "minimum"))
        self._verdicts: dict[tuple[Any, ...], bool] = {}
        self._declared_text = frozenset(n for n, t in (attribute_types or {}).items() if t == "string")

    def schema_for(self, name: str) -> dict[str, Any]:
        """The whole schema a value of attribute ``name`` is checked against (vendor rules and declared type)."""
        return self._schemas.get(name, self._schemas[None])

    def check_user_id(self, raw: Any) -> tuple[UserId | None, str | None]:
        """The vendor's form of the id, or the reason it cannot be one."""
        if raw is None:
            return None, "the user id is NULL"
        try:
            user_id = self.rules.coerce_user_id(raw)
            if isinstance(user_id, str):
                _normalize_value(user_id)  # text that is not valid Unicode cannot be sent, nor checkpointed
        except _Reject as exc:
            return None, f"user id: {exc}"
        except (TypeError, ValueError) as exc:
            return None, f"user id: {exc}"
        key = self._id_signature(user_id)
        valid = self._cached(key, self._user_id, user_id) if key else self._user_id.is_valid(user_id)
        if not valid:
            error = next(iter(self._user_id.iter_errors(user_id)))
            return None, f"user id: {self._reason(error, 'user ids')}"
        return user_id, None

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """Split an update into what can be sent and per-attribute rejections (or skipped NULLs)."""
        user_id, id_problem = self.check_user_id(update.user_id)
        if id_problem is not None:
            shown = update.user_id if isinstance(update.user_id, str | int | None) else repr(update.user_id)
            return None, [
                AttributeResult(shown, str(name), Outcome.REJECTED, _safe_value(value), id_problem)
                for name, value in update.attributes.items()
            ] or [AttributeResult(shown, "", Outcome.REJECTED, None, id_problem)]
        assert user_id is not None
        rejected: list[AttributeResult] = []
        values: dict[str, Any] = {}
        for name, raw in update.attributes.items():
            problem = self._name_problem(name)
            if problem:
                rejected.append(AttributeResult(user_id, str(name), Outcome.REJECTED, _safe_value(raw), problem))
                continue
            if raw is None:
                if self.rules.nulls_are_sent:
                    values[name] = None  # removal: there is no value to check
                else:
                    reason = self.rules.null_skip_reason
                    rejected.append(AttributeResult(user_id, name, Outcome.SKIPPED, None, reason))
                continue
            try:
                value = self._sendable(name, raw)
                problem = self._value_problem(name, value)
            except _Reject as exc:
                value, problem = raw, str(exc)
            except Exception as exc:  # a value nothing can check is the record's problem, never the task's
                value, problem = raw, f"the value cannot be checked ({type(exc).__name__})"
            if problem is None:
                values[name] = value
            else:
                rejected.append(AttributeResult(user_id, name, Outcome.REJECTED, _safe_value(value), problem))
        sendable = UserUpdate(user_id, values) if values else None
        return sendable, rejected

    def _sendable(self, name: str, raw: Any) -> Any:
        """``raw`` as it will be sent: JSON types, exact numbers, declared dates in ISO 8601, declared text."""
        value = _normalize_value(raw)
        if name in self._normalised_dates and type(value) is str:
            return iso_date_text(value)
        if name in self._declared_text and _is_number(value):
            return _number_text(value)
        if self.rules.numbers_are_doubles:
            for number in value if isinstance(value, list) else [value]:
                if _is_number(number) and not _fits_double(number):
                    raise _Reject(
                        f"{self.rules.vendor_label} stores numbers as doubles, which would change this one's "
                        "digits; declare the attribute as string in attribute_types to send it as text"
                    )
        return value

    def _value_problem(self, name: str, value: Any) -> str | None:
        validator = self._validators.get(name, self._default)
        key = self._signature(name, value)
        ok = self._cached(key, validator, value) if key is not None else validator.is_valid(value)
        if ok:
            return None
        return self._reason(next(iter(validator.iter_errors(value))), "strings")

    def _name_problem(self, name: Any) -> str | None:
        if not isinstance(name, str):
            return "attribute name is not a string"
        if self._cached(("#name", len(name)), self._name, name):
            return None
        return f"attribute name must be 1 to {self.rules.attribute_name_max} characters"

    def _id_signature(self, user_id: UserId) -> tuple[Any, ...] | None:
        """What the id schema can see of ``user_id`` (None: check this one on its own, e.g. an email)."""
        if type(user_id) is int:
            return ("#id", int, tuple(user_id >= m for m in self._id_minimums))
        if isinstance(user_id, str) and not self._id_checks_text:
            size = len(user_id)
            return (
                "#id",
                str,
                tuple(size <= m for m in self._id_max_lengths),
                tuple(size >= m for m in self._id_min_lengths),
            )
        return None

    def _signature(self, name: str, value: Any) -> tuple[Any, ...] | None:
        """What the schemas can see of ``value``, or None where only the value itself will do."""
        kind = type(value)
        scope = name if name in self._schemas else None
        if kind is bool or kind is int or kind is float or kind is Decimal:
            return (scope, kind)
        if kind is str and not self._value_checks_text:
            lengths = tuple(len(value) <= limit for limit in self._max_lengths)
            if scope in self._dated:
                return (scope, kind, lengths, _date_class(value))
            return (scope, kind, lengths)
        return None

    def _cached(self, key: tuple[Any, ...], validator: Draft202012Validator, value: Any) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = validator.is_valid(value)
            if len(self._verdicts) < self._CACHE_LIMIT:
                self._verdicts[key] = verdict
        return verdict

    def _reason(self, error: ValidationError, subject: str) -> str:
        """The rule ``error`` broke, in words that do not depend on the value (``subject``: "strings")."""
        deepest, reason = error, _x_reason_of(error)
        while deepest.context:
            candidates = [e for e in deepest.context if e.validator != "type"] or list(deepest.context)
            deepest = max(candidates, key=lambda e: len(e.absolute_schema_path))
            reason = _x_reason_of(deepest) or reason
        return reason or self._keyword_reason(deepest, subject)

    def _keyword_reason(self, error: ValidationError, subject: str) -> str:
        """A schema keyword's reason; jsonschema's own message is never used, as it quotes the value."""
        vendor, keyword, limit = self.rules.vendor_label, error.validator, error.validator_value
        if keyword == "maxLength":
            return f"longer than {limit} characters ({vendor}'s limit for {subject})"
        if keyword == "minLength":
            return "empty" if limit == 1 else f"shorter than {limit} characters ({vendor}'s minimum for {subject})"
        if keyword in ("type", "anyOf", "oneOf"):
            return f"{type(error.instance).__name__} values are not accepted by {vendor}"
        rule = f"{keyword} {limit!r}"
        return f"does not meet {vendor}'s rule ({rule if len(rule) <= 80 else keyword})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number_text(value: int | float | Decimal) -> str:
    """A number's exact digits as text, without exponent (a float's shortest form: ``1e21`` -> ``1000...``)."""
    if isinstance(value, int):
        return str(value)
    return exact_text(value if isinstance(value, Decimal) else Decimal(repr(value)))


def _fits_double(value: int | float | Decimal) -> bool:
    """Whether a double carries ``value`` with the same digits (a float always does: it is one)."""
    if isinstance(value, float):
        return True
    try:
        double = float(value)
    except OverflowError:
        return False
    if not math.isfinite(double):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53 or int(double) == value
    return Decimal(repr(double)) == value


def _schema_values(schema: Any, keyword: str) -> Iterator[Any]:
    """Every value of ``keyword`` anywhere in ``schema``."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == keyword:
                yield value
            else:
                yield from _schema_values(value, keyword)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_values(item, keyword)


def _checks_text(schema: Any) -> bool:
    """Whether ``schema`` looks inside strings (a pattern or a format), beyond their length."""
    return any(True for keyword in ("pattern", "format") for _ in _schema_values(schema, keyword))


def _x_reason_of(error: ValidationError) -> str | None:
    schema = error.schema
    return schema.get("x-reason") if isinstance(schema, dict) else None


def _safe_value(value: Any) -> Any:
    """Keep a rejected value in the failure file in a JSON-safe, bounded form."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate, shown escaped
        return value if len(value) <= 1000 else value[:1000] + f"... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and too_many_digits(value):
        return f"<an integer of about {int(value.bit_length() / 3.322):,} digits>"
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, Decimal) and value.is_finite() and not too_many_digits(value):
        return value
    if isinstance(value, list) and len(repr(value)) <= 1000:
        return value
    return repr(value)[:1000]
