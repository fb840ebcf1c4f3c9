"""The four vendor APIs as the seeds describe them: paths, auth, validation, answers and error shapes.

Each handler takes the parsed JSON body and answers ``(status, body)``; the server owns HTTP and faults.
Where the vendors' docs are silent the sandbox picks the plausible answer and says so in a comment.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from airflow_provider_userattrs.sandbox.state import SandboxState

Reply = tuple[int, Any]


@dataclass(frozen=True)
class Route:
    vendor: str
    pattern: re.Pattern[str]
    handler: Callable[[SandboxState, Any, Any], Reply]
    auth_scheme: str = "Bearer"


def _token(headers: Any, scheme: str) -> str | None:
    value = headers.get("authorization") or ""
    prefix = scheme.lower() + " "
    return value[len(prefix) :].strip() if value.lower().startswith(prefix) else None


# -- AltaTech --------------------------------------------------------------------------------------------

ALTATECH_RESERVED = frozenset({"id", "user_id", "created_at"})
"""Properties AltaTech manages itself: updating them is a per-property fail_update (sandbox's choice)."""


def altatech_unauthorized() -> Reply:
    return 401, {"error": {"code": 40127, "message": "authentication failed", "status": "UNAUTHENTICATED"}}


def altatech_update(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    if not isinstance(body, dict):
        return 400, {"code": 40000, "message": "parameter error: body must be a JSON object"}
    user_id = body.get("user_id")
    values = body.get("property_values")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 32:
        return 400, {"code": 40000, "message": "parameter error: user_id must be a string of 1-32 characters"}
    if not isinstance(values, list) or not values:
        return 400, {"code": 40000, "message": "parameter error: property_values must be a non-empty list"}
    success, failed = [], []
    with state.lock:
        profile = state.data["altatech"].setdefault(user_id, {})
        for item in values:
            name = item.get("property_name") if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name or name in ALTATECH_RESERVED or isinstance(value, dict):
                # The docs spell the field both ways; the sandbox answers failures with the other spelling.
                failed.append({"propertyName": name, "value": value})
                continue
            profile[name] = value
            success.append({"property_name": name, "value": value})
        state.records_applied["altatech"] += 1
    return 200, {"success_update": success, "fail_update": failed}


# -- Fyno --------------------------------------------------------------------------------------------------

ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$",
)


def fyno_type(value: Any) -> str | None:
    """Fyno's property type of a value, or None when Fyno refuses it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if ISO_DATE.match(value) and _is_real_date(value):
            return "date"
        return "string" if len(value) <= 255 else None
    if isinstance(value, list):
        kinds = {fyno_type(v) for v in value}
        return "list" if None not in kinds and not kinds & {"boolean", "list"} else None
    return None


def _is_real_date(value: str) -> bool:
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def fyno_unauthorized() -> Reply:
    return 401, {"_message": "Invalid API details", "status": "error"}


def _fyno_apply(state: SandboxState, workspace: str, item: Any) -> str | None:
    """Apply one profile action; the reason it is refused, if it is."""
    if not isinstance(item, dict) or not isinstance(item.get("distinct_id"), str) or not item["distinct_id"]:
        return "distinct_id is required"
    distinct_id = item["distinct_id"]
    action = item.get("action") if "action" in item else item
    if not isinstance(action, dict):
        return "action must be an object"
    to_set = action.get("$set") or {}
    to_unset = action.get("$unset") or []
    if not isinstance(to_set, dict) or not isinstance(to_unset, list):
        return "$set must be an object and $unset a list"
    if not to_set and not to_unset:
        return "nothing to $set or $unset"
    for name, value in to_set.items():
        if isinstance(value, dict):
            return "$set has object/keys that is not allowed"
        if fyno_type(value) is None:
            return f"value of {name!r} is not a string of at most 255 characters, number, boolean, date or list"
    if state.is_unknown("fyno", distinct_id):
        return "user not found"
    profile = state.data["fyno"].setdefault(workspace, {}).setdefault(distinct_id, {})
    for name, value in to_set.items():
        kind = fyno_type(value)
        known = state.fyno_types.setdefault((workspace, name), kind or "string")
        if known == kind:
            profile[name] = value
        # else: accepted and silently ignored, as Fyno documents for a type mismatch.
    for name in to_unset:
        profile.pop(name, None)
    state.records_applied["fyno"] += 1
    return None


def fyno_set(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    with state.lock:
        reason = _fyno_apply(state, match["workspace"], body)
    if reason:
        return 400, {"_message": reason, "status": "error"}
    return 202, {"request_id": uuid.uuid4().hex}


def fyno_unset(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    if not isinstance(body, dict):
        return 400, {"_message": "body must be an object", "status": "error"}
    return fyno_set(state, match, {"distinct_id": body.get("distinct_id"), "$unset": body.get("$unset")})


def fyno_batch(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        return 400, {"_message": "batch must be a non-empty list", "status": "error"}
    # A value Fyno cannot store at all (an object) rejects the whole batch, as its single endpoint does.
    for item in batch:
        action = item.get("action") if isinstance(item, dict) else None
        to_set = action.get("$set") if isinstance(action, dict) else None
        if isinstance(to_set, dict) and any(isinstance(v, dict) for v in to_set.values()):
            return 400, {"_message": "$set has object/keys that is not allowed", "status": "error"}
    results = []
    with state.lock:
        for item in batch:
            reason = _fyno_apply(state, match["workspace"], item)
            distinct_id = item.get("distinct_id") if isinstance(item, dict) else None
            results.append(
                {"distinct_id": distinct_id, "status": "ok"}
                if reason is None
                else {"distinct_id": distinct_id, "status": "error", "_message": reason}
            )
    return 202, {"request_id": uuid.uuid4().hex, "results": results}


# -- DX ------------------------------------------------------------------------------------------------------


def dx_unauthorized(token: str | None) -> Reply:
    # DX answers errors with 422 and ok: false; the error code says what went wrong.
    return 422, {"ok": False, "error": "not_authed" if not token else "invalid_auth"}


def dx_update(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    email = body.get("email") if isinstance(body, dict) else None
    attributes = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(email, str) or "@" not in email or not isinstance(attributes, list):
        return 422, {"ok": False, "error": "invalid_arguments"}
    with state.lock:
        if state.is_unknown("dx", email):
            return 422, {"ok": False, "error": "user_not_found"}
        profile = state.data["dx"].setdefault(email, {})
        updated, failures = [], []
        for item in attributes:
            name = item.get("name") if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                failures.append({"name": name, "error": "invalid_name"})
            elif value is None:
                profile.pop(name, None)
            elif not isinstance(value, str):
                failures.append({"name": name, "error": "invalid_value"})
            else:
                profile[name] = value
                updated.append({"name": name, "value": value, "updated": True})
        state.records_applied["dx"] += 1
    user = {"id": f"user_{abs(hash(email)) % 10**8}", "email": email, "failures": failures, "attributes": updated}
    return 200, {"ok": True, "user": user}


# -- User.com -----------------------------------------------------------------------------------------------


def usercom_unauthorized() -> Reply:
    return 401, {"detail": "Invalid token."}


def _usercom_value_ok(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _usercom_check_attribute(state: SandboxState, name: Any) -> str | None:
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        return "Ensure this field has at least 1 and no more than 255 characters."
    if state.usercom_attributes is not None and name not in state.usercom_attributes:
        return f"Attribute {name!r} does not exist."
    return None


def usercom_mass_update(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    if not isinstance(body, dict):
        return 400, {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    ids, name, value = body.get("ids"), body.get("attribute"), body.get("value")
    errors: dict[str, list[str]] = {}
    if not isinstance(ids, list) or not ids or not all(type(i) is int for i in ids):
        errors["ids"] = ["A non-empty list of integers is required."]
    problem = _usercom_check_attribute(state, name)
    if problem:
        errors["attribute"] = [problem]
    if not _usercom_value_ok(value):
        errors["value"] = ["Type can be boolean, integer, date, string or date & time."]
    if errors or not isinstance(ids, list):
        return 400, errors
    with state.lock:
        unknown = [i for i in ids if state.is_unknown("usercom", i)]
        if unknown:
            return 400, {"ids": [f"Users with ids {unknown} do not exist."]}
        for user_id in ids:
            state.data["usercom"].setdefault(user_id, {})[name] = value
        state.records_applied["usercom"] += len(ids)
    return 200, {"status": "ok"}


def usercom_set_multiple(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    user_id = int(match["user_id"])
    if not isinstance(body, dict) or not body:
        return 400, {"non_field_errors": ["A non-empty object of attributes is required."]}
    errors = {}
    for name, value in body.items():
        problem = _usercom_check_attribute(state, name)
        if problem or not _usercom_value_ok(value):
            errors[name] = [problem or "Type can be boolean, integer, date, string or date & time."]
    if errors:
        return 400, errors
    with state.lock:
        if state.is_unknown("usercom", user_id):
            return 404, {"detail": "Not found."}
        profile = state.data["usercom"].setdefault(user_id, {})
        profile.update(body)
        state.records_applied["usercom"] += 1
        return 200, {"id": user_id, "custom_attributes": dict(profile)}


ROUTES: tuple[Route, ...] = (
    Route("altatech", re.compile(r"^/v1/property/update$"), altatech_update),
    Route(
        "fyno", re.compile(r"^/v1/(?P<workspace>[^/]+)/(?P<version>live|test)/profiles/properties/batch$"), fyno_batch
    ),
    Route("fyno", re.compile(r"^/v1/(?P<workspace>[^/]+)/(?P<version>live|test)/profiles/properties/set$"), fyno_set),
    Route(
        "fyno", re.compile(r"^/v1/(?P<workspace>[^/]+)/(?P<version>live|test)/profiles/properties/unset$"), fyno_unset
    ),
    Route("dx", re.compile(r"^/users\.attributes\.update$"), dx_update),
    Route("usercom", re.compile(r"^/api/public/users/mass_update_custom_attributes/$"), usercom_mass_update, "Token"),
    Route(
        "usercom",
        re.compile(r"^/api/public/users/(?P<user_id>\d+)/set_multiple_attributes/$"),
        usercom_set_multiple,
        "Token",
    ),
)


def route_for(path: str) -> tuple[Route, re.Match[str]] | None:
    for route in ROUTES:
        match = route.pattern.match(path)
        if match:
            return route, match
    return None


def vendor_of(path: str) -> str | None:
    found = route_for(path)
    return found[0].vendor if found else None


def unauthorized(route: Route, match: re.Match[str], state: SandboxState, headers: Any) -> Reply | None:
    """The vendor's auth error, or None when the credentials are good."""
    token = _token(headers, route.auth_scheme)
    if route.vendor == "dx":
        return dx_unauthorized(token) if token not in state.tokens else None
    if token not in state.tokens:
        return {"altatech": altatech_unauthorized, "fyno": fyno_unauthorized, "usercom": usercom_unauthorized}[
            route.vendor
        ]()
    if route.vendor == "fyno" and match["workspace"] not in state.fyno_workspaces:
        return fyno_unauthorized()
    return None


def handle(state: SandboxState, route: Route, match: re.Match[str], headers: Any, body: Any) -> Reply:
    refused = unauthorized(route, match, state, headers)
    if refused is not None:
        return refused
    # Fyno keeps live and test data apart: one namespace per workspace and version.
    return route.handler(state, _FynoMatch(match) if route.vendor == "fyno" else match, body)


class _FynoMatch:
    """A match whose ``workspace`` is the workspace/version namespace."""

    def __init__(self, match: re.Match[str]) -> None:
        self._match = match

    def __getitem__(self, key: str) -> str:
        if key == "workspace":
            return f"{self._match['workspace']}/{self._match['version']}"
        return self._match[key]
