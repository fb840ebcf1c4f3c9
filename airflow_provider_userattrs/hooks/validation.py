"""Validation of user ids and attribute values before anything is sent.

Some vendors accept a bad value and silently drop it (Fyno ignores a value whose type does not match the
property; over-long strings are refused), so checking before sending is the only way to tell a person
which record and which field is wrong. The rules are JSON Schema (checked with a ``FormatChecker``, so
dates really are dates); each vendor contributes data (:class:`VendorRules`), not code.
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

from airflow_provider_userattrs.results import AttributeResult, Outcome, UserId, UserUpdate

DATE_LIKE = r"^\d{4}-\d{2}-\d{2}"
"""A string that starts like a date must be a real ISO 8601 date or date-time: '2024-13-45' is refused."""

ATTRIBUTE_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "list": {"type": "array"},
}
"""Types a user may declare per attribute (``attribute_types``), for the vendors that cannot say."""


def string_schema(max_length: int) -> dict[str, Any]:
    return {
        "type": "string",
        "maxLength": max_length,
        "if": {"pattern": DATE_LIKE},
        "then": {
            "anyOf": [{"format": "date"}, {"format": "date-time"}],
            "x-reason": "is not a valid ISO 8601 date (expected e.g. 2020-10-01 or 2020-10-01T18:30:00Z)",
        },
    }


def scalar_schema(max_length: int) -> dict[str, Any]:
    return {"anyOf": [string_schema(max_length), {"type": ["number", "boolean"]}]}


def list_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


@dataclass(frozen=True)
class VendorRules:
    """What one vendor accepts, as data."""

    vendor_label: str
    user_id_schema: dict[str, Any]
    value_schema: dict[str, Any]
    coerce_user_id: Callable[[Any], UserId]
    nulls_are_sent: bool
    """True where the vendor can express removal (DX ``null``, Fyno ``$unset``, User.com clears)."""
    null_skip_reason: str = ""
    attribute_name_max: int = 255


class _Reject(Exception):
    pass


def _normalize_value(value: Any) -> Any:
    """Turn warehouse types into JSON types; refuse what JSON cannot carry."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Reject(f"{value!r} is not a number JSON can carry (NaN and Infinity are refused)")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Reject(f"{value!r} is not a finite number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # warehouses hand out naive timestamps: they are taken as UTC
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_normalize_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _normalize_value(v) for k, v in value.items()}
    raise _Reject(f"values of type {type(value).__name__} are not supported")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Validator:
    """Checks and normalises one :class:`UserUpdate` against a vendor's rules; no I/O.

    JSON Schema is the single source of truth, but running it for every value of a million-row sync costs
    more than sending them. Verdicts are therefore cached by what the schemas can look at: a number's or
    a boolean's type (no schema here bounds numbers), a string's length against each ``maxLength`` in
    play and, for strings that look like dates, the string itself (those are checked one by one).
    """

    _CACHE_LIMIT = 100_000

    def __init__(self, rules: VendorRules, attribute_types: Mapping[str, str] | None = None) -> None:
        self.rules = rules
        checker = FormatChecker()
        self._declared: dict[str, Draft202012Validator] = {}
        for name, type_name in (attribute_types or {}).items():
            if type_name not in ATTRIBUTE_TYPES:
                raise ValueError(
                    f"attribute_types[{name!r}]: unknown type {type_name!r}; use {sorted(ATTRIBUTE_TYPES)}"
                )
            declared = dict(ATTRIBUTE_TYPES[type_name], **{"x-reason": f"is not a {type_name}"})
            self._declared[name] = Draft202012Validator(
                {"allOf": [rules.value_schema, declared]}, format_checker=checker
            )
        self._default = Draft202012Validator(rules.value_schema, format_checker=checker)
        self._name = Draft202012Validator(
            {"type": "string", "minLength": 1, "maxLength": rules.attribute_name_max}, format_checker=checker
        )
        self._user_id = Draft202012Validator(rules.user_id_schema, format_checker=checker)
        self._max_lengths = tuple(sorted(set(_schema_values(rules.value_schema, "maxLength"))))
        id_schema = rules.user_id_schema
        self._id_checks_text = any(True for k in ("pattern", "format") for _ in _schema_values(id_schema, k))
        self._id_max_lengths = tuple(_schema_values(id_schema, "maxLength"))
        self._id_min_lengths = tuple(_schema_values(id_schema, "minLength"))
        self._id_minimums = tuple(_schema_values(id_schema, "minimum"))
        self._verdicts: dict[tuple[Any, ...], bool] = {}

    def check_user_id(self, raw: Any) -> tuple[UserId | None, str | None]:
        """The vendor's form of the id, or the reason it cannot be one."""
        if raw is None:
            return None, "the user id is NULL"
        try:
            user_id = self.rules.coerce_user_id(raw)
        except (TypeError, ValueError) as exc:
            return None, f"user id {_describe(raw)} is not valid for {self.rules.vendor_label}: {exc}"
        key = self._id_signature(user_id)
        valid = self._cached(key, self._user_id, user_id) if key else self._user_id.is_valid(user_id)
        if not valid:
            error = next(iter(self._user_id.iter_errors(user_id)))
            return None, f"user id {_describe(raw)} is not valid for {self.rules.vendor_label}: {self._reason(error)}"
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
                value = _normalize_value(raw)
            except _Reject as exc:
                rejected.append(AttributeResult(user_id, name, Outcome.REJECTED, _safe_value(raw), f"{name}: {exc}"))
                continue
            validator = self._declared.get(name, self._default)
            key = self._signature(name, value)
            ok = self._cached(key, validator, value) if key is not None else validator.is_valid(value)
            if ok:
                values[name] = value
            else:
                error = next(iter(validator.iter_errors(value)))
                reason = f"{name}: {self._reason(error)}"
                rejected.append(AttributeResult(user_id, name, Outcome.REJECTED, _safe_value(value), reason))
        sendable = UserUpdate(user_id, values) if values else None
        return sendable, rejected

    def _name_problem(self, name: Any) -> str | None:
        if not isinstance(name, str):
            return f"attribute name {_describe(name)} must be a string"
        if self._cached(("#name", len(name)), self._name, name):
            return None
        return f"attribute name {_describe(name)} must be 1 to {self.rules.attribute_name_max} characters"

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
        scope = name if name in self._declared else None
        if kind is bool or kind is int or kind is float:
            return (scope, kind)
        if kind is str and not _DATE_LIKE.match(value):
            return (scope, kind, tuple(len(value) <= limit for limit in self._max_lengths))
        return None

    def _cached(self, key: tuple[Any, ...], validator: Draft202012Validator, value: Any) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = validator.is_valid(value)
            if len(self._verdicts) < self._CACHE_LIMIT:
                self._verdicts[key] = verdict
        return verdict

    def _reason(self, error: ValidationError) -> str:
        deepest, reason = error, _x_reason_of(error)
        while deepest.context:
            candidates = [e for e in deepest.context if e.validator != "type"] or list(deepest.context)
            deepest = max(candidates, key=lambda e: len(e.absolute_schema_path))
            reason = _x_reason_of(deepest) or reason
        if reason:
            return f"{_describe(deepest.instance)} {reason}"
        instance, vendor = deepest.instance, self.rules.vendor_label
        if deepest.validator == "maxLength" and isinstance(instance, str):
            return f"is {len(instance)} characters long; {vendor} accepts at most {deepest.validator_value}"
        if deepest.validator in ("type", "anyOf", "oneOf"):
            return f"{_describe(instance)} ({type(instance).__name__}) is not a type {vendor} accepts here"
        message = deepest.message
        return message if len(message) <= 200 else message[:197] + "..."


_DATE_LIKE = re.compile(DATE_LIKE)


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


def _x_reason_of(error: ValidationError) -> str | None:
    schema = error.schema
    return schema.get("x-reason") if isinstance(schema, dict) else None


def _safe_value(value: Any) -> Any:
    """Keep a rejected value in the failure file in a JSON-safe, bounded form."""
    if isinstance(value, str):
        return value if len(value) <= 1000 else value[:1000] + f"... ({len(value)} characters)"
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list) and len(repr(value)) <= 1000:
        return value
    return repr(value)[:1000]
