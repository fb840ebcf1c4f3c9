"""DX: one request per user; ``ok`` decides, whatever the HTTP status; ``null`` removes an attribute."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_userattrs.client.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.client.payload import dumps, exact_text
from airflow_provider_userattrs.client.validation import VendorRules, scalar_schema
from airflow_provider_userattrs.client.vendor import (
    Blame,
    bearer,
    check_http_auth,
    common_error_message,
    not_understood,
    one_call_per_user,
    rejected,
    update_of_nobody,
)
from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import VendorAuthError, VendorResponseError
from airflow_provider_userattrs.results import AttributeResult, Outcome

UPDATE_PATH = "/users.attributes.update"
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "missing_scope"})
RATE_ERRORS = frozenset({"ratelimited", "rate_limited"})
SERVICE_ERRORS = frozenset({"internal_error", "service_unavailable", "fatal_error", "request_timeout", "timeout"})
"""Codes about DX rather than the request: the seed warns that "other errors can be returned in the case where
the service is down". Retried as a 503 (and :data:`RATE_ERRORS` as a 429) whatever the HTTP status; every other
code is taken as about the request."""
NOT_LISTED = "DX's answer did not list this attribute as updated: not confirmed"
NOT_UPDATED = (
    "DX answered updated: false for this attribute: not confirmed (DX does not say whether it refused the "
    "value or already had it); resent by a retry or a replay"
)
_NAME_KEYS = ("name", "attribute", "attribute_name", "key", "field")
_REASON_KEYS = ("error", "reason", "message", "code")

RULES = VendorRules(
    vendor_label="DX",
    user_id_schema={
        "type": "string",
        "format": "email",
        "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        "maxLength": 320,
        "x-reason": "not an email address (DX identifies users by email)",
    },
    value_schema=scalar_schema(65_535),
    coerce_user_id=lambda raw: raw if isinstance(raw, str) else _refuse(raw),
    nulls_are_sent=True,
)


def _refuse(raw: Any) -> str:
    raise TypeError(f"expected an email string, got {type(raw).__name__}")


def as_dx_value(value: Any) -> str | None:
    """DX shows attribute values as text: booleans as ``"true"``/``"false"``, numbers as their exact digits
    without exponent (a NUMERIC ``12345678901234567.12`` as ``"12345678901234567.12"``, ``1e21`` as
    ``"1000000000000000000000"``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return exact_text(value if isinstance(value, Decimal) else Decimal(repr(value)))
    return dumps(value)


def user_body(entry: Entry) -> dict[str, Any]:
    return {
        "email": entry.user_id,
        "attributes": [{"name": k, "value": as_dx_value(v)} for k, v in entry.values.items()],
    }


class DXApi:
    """DX's ``users.attributes.update`` (scope ``users:write``)."""

    name = "dx"
    label = "DX"
    default_host: str | None = "https://api.getdx.com"
    host_placeholder = "https://api.getdx.com"
    rules = RULES
    window_setting: str | None = None
    announces_budget = False
    alternate_methods: Mapping[str, tuple[str, ...]] = {}
    published_quota: tuple[int, float] | None = (1000, 60.0)
    """DX's documented rate limit: 1,000 requests a minute per account, sliding window. The quota a connection
    to DX's own API declares when it declares none (``quota_requests`` 0: not declared, another plan)."""

    def api_root(self, settings: HookSettings, name: str) -> str:
        return ""

    def headers(self, token: str) -> dict[str, str]:
        return bearer(token)

    def plan(self, entries: Sequence[Entry], settings: HookSettings) -> list[Call]:
        return one_call_per_user(UPDATE_PATH, user_body, entries)

    def probe_call(self) -> Call:
        return update_of_nobody(UPDATE_PATH, user_body)

    def check_auth(self, status: int, body: Any, name: str) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("ok") is False and isinstance(error, str) and error in AUTH_ERRORS:
            raise VendorAuthError(
                f"DX refused the credentials of {name} ({error}); check the token and its users:write scope"
            )
        check_http_auth(self, status, body, name)

    def error_message(self, body: Any) -> str:
        return common_error_message(body)

    def effective_status(self, status: int, body: Any) -> tuple[int, str | None]:
        error = body.get("error") if isinstance(body, dict) and body.get("ok") is False else None
        if error in RATE_ERRORS:
            return 429, f"ok: false, {error}"
        if error in SERVICE_ERRORS:
            return max(status, 503), f"ok: false, {error}"
        return status, None

    def not_found_reason(self, call: Call, body: Any) -> str | None:
        return None  # one endpoint for every user (an unknown email is a 422): a 404 is about the route

    def blame(self, call: Call, body: Any) -> Blame | None:
        return None

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """``ok`` decides, then each attribute needs its confirmation (seed 002): a non-null attribute is
        delivered only when ``user.attributes`` lists it with ``"updated": true`` (names compared without case,
        as DX compares them); a null one (a removal, "not returned in the response") when ``ok`` is true and no
        failure names it. ``updated: false`` is ambiguous (refused, or unchanged) and so not counted delivered:
        it is a retryable failure with its own reason. Per-attribute problems come in ``user.failures``, whose
        entry shape DX does not publish: a name under any of :data:`_NAME_KEYS` or a bare string fails that
        attribute; an entry naming no attribute, or one that was not sent, fails every attribute of the user."""
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise VendorResponseError(f"DX answered HTTP {status} without an ok field")
        if not body["ok"]:
            raise rejected(self, status, body)
        if not 200 <= status < 300:
            raise not_understood(self, status, body)
        (entry,) = call.entries
        raw_user = body.get("user")
        user: dict[str, Any] = raw_user if isinstance(raw_user, dict) else {}
        named, unattributed = _failures(user.get("failures"))
        sent = {name.casefold() for name in entry.values}
        stray = {name: reason for name, reason in named.items() if name.casefold() not in sent}
        if stray and not unattributed:
            unattributed = "for attributes not sent: " + json.dumps(stray, default=str)[:120]
        failed = {name.casefold(): reason for name, reason in named.items()}
        confirmed = _confirmations(user.get("attributes"))
        results: Outcomes = []
        for name, value in entry.values.items():
            key = name.casefold()
            if key in failed:
                result = AttributeResult(entry.user_id, name, Outcome.REJECTED, value, f"DX: {failed[key]}")
            elif unattributed:
                reason = f"DX reported a failure naming no attribute it was sent: {unattributed}"
                result = AttributeResult(entry.user_id, name, Outcome.REJECTED, value, reason)
            elif value is None or confirmed.get(key) is True:
                result = AttributeResult(entry.user_id, name, Outcome.DELIVERED, value)
            else:
                reason = NOT_UPDATED if confirmed.get(key) is False else NOT_LISTED
                result = AttributeResult(entry.user_id, name, Outcome.FAILED, value, reason)
            results.append((entry.ref, result))
        return results


def _confirmations(attributes: Any) -> dict[str, bool | None]:
    """Attribute name (folded) -> its ``updated`` flag in the answer (None: listed without a boolean flag)."""
    confirmed: dict[str, bool | None] = {}
    for item in attributes if isinstance(attributes, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            updated = item.get("updated")
            confirmed[item["name"].casefold()] = updated if isinstance(updated, bool) else None
    return confirmed


def _first_text(item: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _failures(failures: Any) -> tuple[dict[str, str], str]:
    """Attribute -> reason for the failures DX attributed, and a snippet of those it did not."""
    named: dict[str, str] = {}
    unattributed: list[Any] = []
    for item in failures if isinstance(failures, list) else ([failures] if failures else []):
        if isinstance(item, str) and item:
            named[item] = "refused"
        elif isinstance(item, dict) and (name := _first_text(item, _NAME_KEYS)):
            named[name] = _first_text(item, _REASON_KEYS) or "refused"
        else:
            unattributed.append(item)
    return named, json.dumps(unattributed, default=str)[:120] if unattributed else ""


DX = DXApi()
