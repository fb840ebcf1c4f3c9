"""AltaTech: one request per user; each property succeeds or fails on its own inside an HTTP 200."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_userattrs.client.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.client.validation import VendorRules, list_schema, scalar_schema
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

MAX_STRING = 65_535
AUTH_FAILED = 40127
UPDATE_PATH = "/v1/property/update"

RULES = VendorRules(
    vendor_label="AltaTech",
    user_id_schema={"type": "string", "minLength": 1, "maxLength": 32},
    value_schema={"anyOf": [scalar_schema(MAX_STRING), list_schema(scalar_schema(MAX_STRING))]},
    coerce_user_id=lambda raw: raw if isinstance(raw, str) else str(_plain_int(raw)),
    nulls_are_sent=False,
    null_skip_reason="NULL not sent: AltaTech has no way to remove a property, so it is left unchanged",
)


def _plain_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"expected a string or an integer, got {type(raw).__name__}")
    return raw


def _property_name(item: Any) -> str:
    # AltaTech's docs spell the field both ways.
    return str(item.get("property_name", item.get("propertyName")))


def user_body(entry: Entry) -> dict[str, Any]:
    return {
        "user_id": entry.user_id,
        "property_values": [{"property_name": k, "value": v} for k, v in entry.values.items()],
    }


class AltaTechApi:
    """AltaTech's ``POST /v1/property/update``: a key belongs to one agent, so one key is one user namespace."""

    name = "altatech"
    label = "AltaTech"
    default_host: str | None = "https://altatech.ai"
    host_placeholder = "https://altatech.ai"
    rules = RULES
    window_setting: str | None = None
    announces_budget = True
    alternate_methods: Mapping[str, tuple[str, ...]] = {}

    def api_root(self, settings: HookSettings, name: str) -> str:
        return ""

    def headers(self, token: str) -> dict[str, str]:
        return bearer(token)

    def plan(self, entries: Sequence[Entry], settings: HookSettings) -> list[Call]:
        return one_call_per_user(UPDATE_PATH, user_body, entries)

    def probe_call(self) -> Call:
        return update_of_nobody(UPDATE_PATH, user_body)

    def check_auth(self, status: int, body: Any, name: str) -> None:
        if _error_code(body) == AUTH_FAILED:
            raise VendorAuthError(
                f"AltaTech refused the credentials of {name} (code 40127, authentication failed); check the API key"
            )
        check_http_auth(self, status, body, name)

    def error_message(self, body: Any) -> str:
        return common_error_message(body)

    def effective_status(self, status: int, body: Any) -> tuple[int, str | None]:
        """An error code names its HTTP status in its first three digits (40000 bad request, 40127
        unauthorised): a 429xx, 408xx or 5xxxx code in any answer is a throttle, a timeout or an outage."""
        code = _error_code(body)
        meant = code // 100 if code is not None and 10000 <= code <= 59999 else None
        if meant is not None and (meant in (408, 429) or meant >= 500):
            return meant, f"code {code}: {self.error_message(body)}"
        return status, None

    def not_found_reason(self, call: Call, body: Any) -> str | None:
        return None  # one endpoint for every user: a 404 is about the route

    def blame(self, call: Call, body: Any) -> Blame | None:
        return None

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """Success is a 2xx with ``success_update``/``fail_update``. An error body (``{"code", "message"}`` or
        ``{"error": {...}}``, vendor-notes: which status carries it is not published) is a rejection
        whatever the status (codes about the service or the pace never get here: see :meth:`effective_status`)."""
        code = _error_code(body)
        if status >= 400 or code is not None:
            raise rejected(self, status, body)
        if not 200 <= status < 300:
            raise not_understood(self, status, body)
        if not isinstance(body, dict) or ("success_update" not in body and "fail_update" not in body):
            raise VendorResponseError(f"AltaTech answered HTTP {status} without success_update/fail_update")
        (entry,) = call.entries
        succeeded = {_property_name(item) for item in body.get("success_update") or []}
        failed = {_property_name(item) for item in body.get("fail_update") or []}
        results: Outcomes = []
        for name, value in entry.values.items():
            if name in failed:
                outcome, reason = Outcome.REJECTED, "AltaTech refused this property (fail_update)"
            elif name in succeeded:
                outcome, reason = Outcome.DELIVERED, None
            else:
                outcome, reason = Outcome.FAILED, "AltaTech's answer did not mention this property"
            results.append((entry.ref, AttributeResult(entry.user_id, name, outcome, value, reason)))
        return results


def _error_code(body: Any) -> int | None:
    """The code of an AltaTech error body, in either of its two documented shapes (None: not an error)."""
    if not isinstance(body, dict) or "success_update" in body or "fail_update" in body:
        return None
    error = body.get("error")
    raw = error.get("code") if isinstance(error, dict) else body.get("code")
    if isinstance(raw, bool):
        return None
    try:
        code = int(raw) if raw is not None else None
        return code or None  # a 0 is no error code
    except (TypeError, ValueError):
        return None


ALTATECH = AltaTechApi()
