"""The four vendor APIs as the seeds describe them: paths, methods, auth, validation, answers and error shapes.

Each handler takes the parsed JSON body and answers ``(status, body)``; the server owns HTTP and faults.
Where the vendors' docs are silent the sandbox picks the plausible answer and says so in a comment.

As strict as the vendors, because a lenient stand-in hides client bugs: only the methods the seeds name
(POST; User.com's mass update also PUT), ``Content-Type: application/json`` on every request (all four seeds
send it), Fyno batch items with an ``action``, User.com custom attributes that exist in the app.

Two answer parts are published by nobody: the per-item status of Fyno's batch answer and the entries of
DX's ``user.failures``. The sandbox does not settle on one invented shape: :class:`~.state.AnswerShapes`
picks one of several plausible shapes (``POST /_sandbox/shapes``), so that a client can be tested on each.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from airflow_provider_userattrs.sandbox.state import SandboxState

Reply = tuple[int, Any]


@dataclass(frozen=True)
class Refusals:
    """A vendor's answers to a request it cannot take at all, and the body of its 429."""

    method: Callable[[str], Reply]
    content_type: Callable[[str], Reply]
    bad_json: Callable[[str], Reply]
    throttled: Callable[[], Any]


@dataclass(frozen=True)
class Route:
    vendor: str
    pattern: re.Pattern[str]
    handler: Callable[[SandboxState, Any, Any], Reply]
    auth_scheme: str = "Bearer"
    methods: tuple[str, ...] = ("POST",)


def _token(headers: Any, scheme: str) -> str | None:
    value = headers.get("authorization") or ""
    prefix = scheme.lower() + " "
    return value[len(prefix) :].strip() if value.lower().startswith(prefix) else None


# -- AltaTech --------------------------------------------------------------------------------------------

ALTATECH_RESERVED = frozenset({"id", "user_id", "created_at"})
"""Properties AltaTech manages itself: updating them is a per-property fail_update (sandbox's choice)."""


def altatech_unauthorized() -> Reply:
    return 401, {"error": {"code": 40127, "message": "authentication failed", "status": "UNAUTHENTICATED"}}


def altatech_parameter_error(message: str) -> Reply:
    return 400, {"code": 40000, "message": f"parameter error: {message}"}


# Seed 000 names no status or body for a wrong method, a missing Content-Type, bad JSON or a 429: the sandbox
# answers in AltaTech's documented {"code", "message"} shape, with the documented 40000 "parameter error" for
# bad requests; 40500 and 42900 follow the pattern of 40000 and 40127 and are the sandbox's guesses.
ALTATECH_REFUSALS = Refusals(
    method=lambda method: (405, {"code": 40500, "message": f"method {method} not allowed"}),
    content_type=lambda got: altatech_parameter_error(f"Content-Type must be application/json, not {got!r}"),
    bad_json=lambda problem: altatech_parameter_error(f"body is not valid JSON ({problem})"),
    throttled=lambda: {"code": 42900, "message": "rate limit exceeded"},
)


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


def fyno_error(message: str, status: int = 400) -> Reply:
    return status, {"_message": message, "status": "error"}


# Fyno documents 400 and 401 with {"_message", "status": "error"}; its docs are silent on a wrong method, a
# missing Content-Type, bad JSON and the 429 body: the sandbox answers them in the same shape (its choice).
FYNO_REFUSALS = Refusals(
    method=lambda method: fyno_error(f"Method {method} not allowed", 405),
    content_type=lambda got: fyno_error(f"Content-Type must be application/json, not {got!r}"),
    bad_json=lambda problem: fyno_error(f"Invalid JSON body ({problem})"),
    throttled=lambda: {"_message": "Too many requests", "status": "error"},
)


def _fyno_action_problem(distinct_id: Any, action: Any) -> str | None:
    """What makes a profile action unusable as a request (refused whole, before anything is applied)."""
    if not isinstance(distinct_id, str) or not distinct_id:
        return "distinct_id is required"
    if not isinstance(action, dict):
        return "action must be an object"
    to_set = action.get("$set") or {}
    to_unset = action.get("$unset") or []
    if not isinstance(to_set, dict) or not isinstance(to_unset, list):
        return "$set must be an object and $unset a list"
    if any(isinstance(value, dict) for value in to_set.values()):
        return "$set has object/keys that is not allowed"  # Fyno's documented 400
    return None


def _fyno_apply(state: SandboxState, workspace: str, distinct_id: str, action: dict[str, Any]) -> str | None:
    """Apply one well-formed profile action; the reason it is refused, if it is."""
    to_set = action.get("$set") or {}
    to_unset = action.get("$unset") or []
    if not to_set and not to_unset:
        return "nothing to $set or $unset"
    for name, value in to_set.items():
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
    """``set`` and ``unset`` take the action's keys at the top level, next to ``distinct_id`` (seed 001)."""
    if not isinstance(body, dict):
        return fyno_error("body must be an object")
    distinct_id = body.get("distinct_id")
    problem = _fyno_action_problem(distinct_id, body)
    with state.lock:
        reason = problem or _fyno_apply(state, match["workspace"], str(distinct_id), body)
    if reason:
        return fyno_error(reason)
    return 202, {"request_id": uuid.uuid4().hex}


def fyno_unset(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    if not isinstance(body, dict):
        return fyno_error("body must be an object")
    return fyno_set(state, match, {"distinct_id": body.get("distinct_id"), "$unset": body.get("$unset")})


def _fyno_batch_problem(batch: Any) -> str | None:
    """A malformed item refuses the whole batch with a 400, as the documented object-value error does.

    Fyno's docs do not say whether a batch can be partly refused; the sandbox refuses a batch whole for what
    makes an item unreadable (no ``distinct_id``, no ``action`` object, an object value) and answers the
    rest (unknown user, a value Fyno cannot store) per item.
    """
    if not isinstance(batch, list) or not batch:
        return "batch must be a non-empty list"
    for item in batch:
        if not isinstance(item, dict):
            return "each batch item must be an object"
        if "action" not in item:
            return "action is required"
        problem = _fyno_action_problem(item.get("distinct_id"), item["action"])
        if problem:
            return problem
    return None


def fyno_batch(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    batch = body.get("batch") if isinstance(body, dict) else None
    problem = _fyno_batch_problem(batch)
    if problem or not isinstance(batch, list):
        return fyno_error(problem or "batch must be a non-empty list")
    with state.lock:
        outcomes = [
            (item["distinct_id"], _fyno_apply(state, match["workspace"], item["distinct_id"], item["action"]))
            for item in batch
        ]
        shape = state.shapes.fyno_batch
    operations = [[op for op in item["action"] if op.startswith("$")] for item in batch]
    return 202, {"request_id": uuid.uuid4().hex, **fyno_item_statuses(shape, outcomes, operations)}


def fyno_item_statuses(
    shape: str, outcomes: list[tuple[str, str | None]], operations: list[list[str]]
) -> dict[str, Any]:
    """The per-item part of the batch answer, in the chosen :class:`~.state.AnswerShapes`."""
    if shape == "request_id":
        return {}  # accepted for asynchronous processing; refused items are silently dropped
    if shape == "operations":  # documented: keyed by operation, naming no user
        return {
            "batch": [{op: reason or "ok" for op in ops} for (_, reason), ops in zip(outcomes, operations, strict=True)]
        }
    return {shape: [{"distinct_id": d, **_fyno_item_status(shape, reason)} for d, reason in outcomes]}


def _fyno_item_status(shape: str, reason: str | None) -> dict[str, Any]:
    if shape == "batch":
        return {"success": True} if reason is None else {"success": False, "error": reason}
    return {"status": "ok"} if reason is None else {"status": "error", "_message": reason}


# -- DX ------------------------------------------------------------------------------------------------------


def dx_unauthorized(token: str | None) -> Reply:
    # DX answers errors with 422 and ok: false; the error code says what went wrong.
    return 422, {"ok": False, "error": "not_authed" if not token else "invalid_auth"}


# DX documents errors as HTTP 422 with ok: false and an error code, and 429 over its rate limit. The codes below
# (and the 405 for a wrong method) are not published: the sandbox's choice, in DX's shape.
DX_REFUSALS = Refusals(
    method=lambda method: (405, {"ok": False, "error": "method_not_allowed"}),
    content_type=lambda got: (422, {"ok": False, "error": "invalid_content_type"}),
    bad_json=lambda problem: (422, {"ok": False, "error": "invalid_json"}),
    throttled=lambda: {"ok": False, "error": "rate_limited"},
)

DX_FAILURE_MESSAGES = {
    "invalid_name": "name must be a non-empty string",
    "invalid_value": "value must be a string or null",
}


def dx_failure(shape: str, name: Any, code: str) -> Any:
    """One entry of ``user.failures``, in the chosen :class:`~.state.AnswerShapes` (seed 002 shows only ``[]``)."""
    if shape == "attribute_message":
        return {"attribute": name, "message": DX_FAILURE_MESSAGES[code]}
    if shape == "names":
        return name
    return {"name": name, "error": code}


def dx_update(state: SandboxState, match: re.Match[str], body: Any) -> Reply:
    email = body.get("email") if isinstance(body, dict) else None
    attributes = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(email, str) or "@" not in email or not isinstance(attributes, list):
        return 422, {"ok": False, "error": "invalid_arguments"}
    with state.lock:
        if state.is_unknown("dx", email):
            return 422, {"ok": False, "error": "user_not_found"}
        shape = state.shapes.dx_failures
        report_unchanged = state.shapes.dx_updated == "changed"
        profile = state.data["dx"].setdefault(email, {})
        updated, failures = [], []
        for item in attributes:
            name = item.get("name") if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                failures.append(dx_failure(shape, name, "invalid_name"))
            elif value is None:
                profile.pop(name, None)
            elif not isinstance(value, str):
                failures.append(dx_failure(shape, name, "invalid_value"))
            else:
                unchanged = report_unchanged and profile.get(name) == value
                profile[name] = value
                updated.append({"name": name, "value": value, "updated": not unchanged})
        state.records_applied["dx"] += 1
    user = {"id": f"user_{abs(hash(email)) % 10**8}", "email": email, "failures": failures, "attributes": updated}
    return 200, {"ok": True, "user": user}


# -- User.com -----------------------------------------------------------------------------------------------


def usercom_unauthorized() -> Reply:
    return 401, {"detail": "Invalid token."}


# User.com runs Django REST framework (its error bodies are DRF's): these are DRF's own default answers to a
# wrong method, an unsupported media type and unparsable JSON. The 429 text is the one User.com documents.
USERCOM_REFUSALS = Refusals(
    method=lambda method: (405, {"detail": f'Method "{method}" not allowed.'}),
    content_type=lambda got: (415, {"detail": f'Unsupported media type "{got}" in request.'}),
    bad_json=lambda problem: (400, {"detail": f"JSON parse error - {problem}"}),
    throttled=lambda: {"detail": "You have reached a rate limit"},
)


def _usercom_value_ok(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _usercom_check_attribute(state: SandboxState, name: Any) -> str | None:
    """Why User.com would refuse this attribute name: custom attributes must exist in the app (seed 004).

    The wording of an unknown attribute is not published: the sandbox's guess is DRF's own message for a
    related object looked up by name (``SlugRelatedField``), answered as a 400 keyed by the field.
    """
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        return "Ensure this field has at least 1 and no more than 255 characters."
    if state.usercom_attributes is not None and name not in state.usercom_attributes:
        return f"Object with name={name} does not exist."
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
    # Seed 004 says PUT and every one of its examples POSTs: both are taken.
    Route(
        "usercom",
        re.compile(r"^/api/public/users/mass_update_custom_attributes/$"),
        usercom_mass_update,
        "Token",
        ("POST", "PUT"),
    ),
    # Not in the seed; public SDKs POST it (vendor-notes).
    Route(
        "usercom",
        re.compile(r"^/api/public/users/(?P<user_id>\d+)/set_multiple_attributes/$"),
        usercom_set_multiple,
        "Token",
    ),
)

REFUSALS = {"altatech": ALTATECH_REFUSALS, "fyno": FYNO_REFUSALS, "dx": DX_REFUSALS, "usercom": USERCOM_REFUSALS}


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


def allowed_methods(route: Route, state: SandboxState) -> tuple[str, ...]:
    """The methods ``route`` takes now (User.com's mass update may be set to take only PUT or only POST)."""
    if route.handler is usercom_mass_update and state.shapes.usercom_mass_method != "both":
        return (state.shapes.usercom_mass_method,)
    return route.methods


def wrong_method(route: Route, method: str, state: SandboxState) -> Reply | None:
    """The vendor's refusal of a method its seed does not name for this path (checked before anything else)."""
    return None if method in allowed_methods(route, state) else REFUSALS[route.vendor].method(method)


def is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


def handle(state: SandboxState, route: Route, match: re.Match[str], headers: Any, data: bytes) -> Reply:
    """Auth first (as DRF and most gateways do), then the media type, then the JSON, then the vendor logic."""
    refused = unauthorized(route, match, state, headers)
    if refused is not None:
        return refused
    refusals = REFUSALS[route.vendor]
    content_type = headers.get("content-type") or ""
    if not is_json(content_type):
        return refusals.content_type(content_type)
    try:
        body = json.loads(data) if data else None
    except ValueError as exc:
        return refusals.bad_json(str(exc))
    # Fyno keeps live and test data apart: one namespace per workspace and version.
    return route.handler(state, _FynoMatch(match) if route.vendor == "fyno" else match, body)


def throttled_body(vendor: str) -> Any:
    return REFUSALS[vendor].throttled()


class _FynoMatch:
    """A match whose ``workspace`` is the workspace/version namespace."""

    def __init__(self, match: re.Match[str]) -> None:
        self._match = match

    def __getitem__(self, key: str) -> str:
        if key == "workspace":
            return f"{self._match['workspace']}/{self._match['version']}"
        return self._match[key]
