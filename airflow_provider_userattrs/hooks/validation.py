"""Validation of user ids and attribute values before anything is sent.

Some vendors accept a bad value and silently drop it (Fyno ignores a value whose type does not match the
property; over-long strings are refused), so checking before sending is the only way to tell a person
which record and which field is wrong. The rules are JSON Schema (checked with a ``FormatChecker``, so
dates really are dates); each vendor contributes data (:class:`VendorRules`), not code.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
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
    """Checks and normalises one :class:`UserUpdate` against a vendor's rules; no I/O."""

    def __init__(self, rules: VendorRules, attribute_types: Mapping[str, str] | None = None) -> None:
        self.rules = rules
        properties: dict[str, Any] = {}
        for name, type_name in (attribute_types or {}).items():
            if type_name not in ATTRIBUTE_TYPES:
                raise ValueError(
                    f"attribute_types[{name!r}]: unknown type {type_name!r}; use {sorted(ATTRIBUTE_TYPES)}"
                )
            declared = dict(ATTRIBUTE_TYPES[type_name], **{"x-reason": f"is not a {type_name}"})
            properties[name] = {"allOf": [rules.value_schema, declared]}
        schema = {
            "type": "object",
            "propertyNames": {"type": "string", "minLength": 1, "maxLength": rules.attribute_name_max},
            "properties": properties,
            "additionalProperties": rules.value_schema,
        }
        checker = FormatChecker()
        self._attributes = Draft202012Validator(schema, format_checker=checker)
        self._user_id = Draft202012Validator(rules.user_id_schema, format_checker=checker)

    def check_user_id(self, raw: Any) -> tuple[UserId | None, str | None]:
        """The vendor's form of the id, or the reason it cannot be one."""
        if raw is None:
            return None, "the user id is NULL"
        try:
            user_id = self.rules.coerce_user_id(raw)
        except (TypeError, ValueError) as exc:
            return None, f"user id {_describe(raw)} is not valid for {self.rules.vendor_label}: {exc}"
        error = next(iter(self._user_id.iter_errors(user_id)), None)
        if error is not None:
            return None, f"user id {_describe(raw)} is not valid for {self.rules.vendor_label}: {self._reason(error)}"
        return user_id, None

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """Split an update into what can be sent and per-attribute rejections (or skipped NULLs)."""
        user_id, id_problem = self.check_user_id(update.user_id)
        if id_problem is not None:
            shown = update.user_id if isinstance(update.user_id, str | int | None) else repr(update.user_id)
            return None, [
                AttributeResult(shown, str(name), Outcome.REJECTED, value, id_problem)
                for name, value in update.attributes.items()
            ] or [AttributeResult(shown, "", Outcome.REJECTED, None, id_problem)]
        assert user_id is not None
        rejected: list[AttributeResult] = []
        values: dict[str, Any] = {}
        nulls: dict[str, None] = {}
        for name, raw in update.attributes.items():
            if raw is None:
                if not self.rules.nulls_are_sent:
                    reason = self.rules.null_skip_reason
                    rejected.append(AttributeResult(user_id, str(name), Outcome.SKIPPED, None, reason))
                elif isinstance(name, str) and 1 <= len(name) <= self.rules.attribute_name_max:
                    nulls[name] = None  # removal: nothing in the value schema to check
                    continue
                else:
                    values[str(name)] = None
                continue
            if not isinstance(name, str):
                rejected.append(
                    AttributeResult(user_id, str(name), Outcome.REJECTED, raw, "attribute names must be strings")
                )
                continue
            try:
                values[name] = _normalize_value(raw)
            except _Reject as exc:
                rejected.append(AttributeResult(user_id, name, Outcome.REJECTED, _safe_value(raw), f"{name}: {exc}"))
        if values and not self._attributes.is_valid(values):
            for name, reason in self._attribute_errors(values).items():
                rejected.append(AttributeResult(user_id, name, Outcome.REJECTED, _safe_value(values.pop(name)), reason))
        if nulls:  # keep the record's order of attributes
            values = {k: values.get(k) for k in map(str, update.attributes) if k in values or k in nulls}
        sendable = UserUpdate(user_id, values) if values else None
        return sendable, rejected

    def _attribute_errors(self, values: dict[str, Any]) -> dict[str, str]:
        reasons: dict[str, str] = {}
        for error in self._attributes.iter_errors(values):
            if not error.path:
                # An error about a property name: jsonschema reports it at the object level.
                for name in values:
                    if not (1 <= len(name) <= self.rules.attribute_name_max):
                        reasons.setdefault(
                            name,
                            f"attribute name {_describe(name)} must be 1 to {self.rules.attribute_name_max} characters",
                        )
                continue
            name = str(error.path[0])
            reasons.setdefault(name, f"{name}: {self._reason(error)}")
        return reasons

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
