"""DX: one request per user; ``ok`` decides, whatever the HTTP status; ``null`` removes an attribute."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_userattrs.errors import VendorAuthError, VendorResponseError
from airflow_provider_userattrs.hooks.base import Call, Entry, UserAttributesHook
from airflow_provider_userattrs.hooks.validation import VendorRules, scalar_schema
from airflow_provider_userattrs.results import AttributeResult, Outcome

AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "missing_scope"})

RULES = VendorRules(
    vendor_label="DX",
    user_id_schema={
        "type": "string",
        "format": "email",
        "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        "maxLength": 320,
        "x-reason": "is not an email address (DX identifies users by email)",
    },
    value_schema=scalar_schema(65_535),
    coerce_user_id=lambda raw: raw if isinstance(raw, str) else _refuse(raw),
    nulls_are_sent=True,
)


def _refuse(raw: Any) -> str:
    raise TypeError(f"expected an email string, got {type(raw).__name__}")


def as_dx_value(value: Any) -> str | None:
    """DX shows attribute values as text: numbers and booleans are sent as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


class DXHook(UserAttributesHook):
    """Sets custom user attributes through DX's ``users.attributes.update`` (scope ``users:write``)."""

    conn_type = "dx"
    hook_name = "DX"
    default_conn_name = "dx_default"
    vendor = "dx"
    vendor_label = "DX"
    default_host = "https://api.getdx.com"
    rules = RULES

    update_path = "/users.attributes.update"

    def _user_body(self, entry: Entry) -> Any:
        return {
            "email": entry.user_id,
            "attributes": [{"name": k, "value": as_dx_value(v)} for k, v in entry.values.items()],
        }

    def _check_auth(self, status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("ok") is False and isinstance(error, str) and error in AUTH_ERRORS:
            raise VendorAuthError(
                f"DX refused the credentials of connection {self.conn_id!r} ({body['error']}); check the token "
                "and its users:write scope"
            )
        super()._check_auth(status, body)

    def _parse(self, call: Call, status: int, body: Any) -> list[tuple[int, AttributeResult]]:
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise VendorResponseError(f"DX answered HTTP {status} without an ok field")
        if not body["ok"]:
            raise self._rejected(status, body)
        (entry,) = call.entries
        user = body.get("user") or {}
        failures = {
            str(f.get("name")): str(f.get("error") or f.get("reason") or "refused")
            for f in user.get("failures") or []
            if isinstance(f, dict)
        }
        results: list[tuple[int, AttributeResult]] = []
        for name, value in entry.values.items():
            if name in failures:
                result = AttributeResult(entry.user_id, name, Outcome.REJECTED, value, f"DX: {failures[name]}")
            else:
                result = AttributeResult(entry.user_id, name, Outcome.DELIVERED, value)
            results.append((entry.ref, result))
        return results
