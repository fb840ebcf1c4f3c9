"""Fyno: users are sent through the batch endpoint; ``null`` becomes ``$unset``; answers are 202."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from airflow_provider_userattrs.client.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.client.validation import VendorRules, list_schema, string_schema
from airflow_provider_userattrs.client.vendor import (
    Blame,
    bearer,
    check_http_auth,
    common_error_message,
    delivered,
    not_understood,
    plain_status,
    rejected,
)
from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import ConnectionConfigError, VendorAuthError
from airflow_provider_userattrs.results import AttributeResult, Outcome

MAX_STRING = 255
BATCH_PATH = "/batch"

RULES = VendorRules(
    vendor_label="Fyno",
    user_id_schema={"type": "string", "minLength": 1, "maxLength": 255},
    value_schema={
        "anyOf": [
            string_schema(MAX_STRING),
            {"type": ["number", "boolean"]},
            list_schema({"anyOf": [string_schema(MAX_STRING), {"type": "number"}]}),
        ]
    },
    coerce_user_id=lambda raw: raw if isinstance(raw, str) else str(raw) if type(raw) is int else _refuse(raw),
    nulls_are_sent=True,
    numbers_are_doubles=True,  # Fyno "Number: an integer or a decimal", stored in JavaScript as a double
    types_dates=True,  # a new property takes the type of its value; dates must be ISO 8601 (seeds 001/003)
)

_ITEM_KEYS = ("batch", "results", "items", "statuses")
"""Where a batch answer's per-item list may be: ``batch`` is documented (vendor-notes); the others are read
too, since the field was unpublished when the first clients were written."""
OPERATIONS = ("$set", "$unset", "$once", "$add", "$append", "$remove")
_OK = "ok"


def _refuse(raw: Any) -> str:
    raise TypeError(f"expected a string, got {type(raw).__name__}")


def batch_item(entry: Entry) -> dict[str, Any]:
    action: dict[str, Any] = {}
    to_set = {k: v for k, v in entry.values.items() if v is not None}
    to_unset = [k for k, v in entry.values.items() if v is None]
    if to_set:
        action["$set"] = to_set
    if to_unset:
        action["$unset"] = to_unset
    return {"distinct_id": entry.user_id, "action": action}


def batch_call(entries: Sequence[Entry]) -> Call:
    """One batch call; it rebuilds itself for a part of its entries when a refusal must be split."""
    return Call("POST", BATCH_PATH, {"batch": [batch_item(e) for e in entries]}, tuple(entries), batch_call)


class FynoApi:
    """Fyno's profile properties of a workspace (settings ``workspace_id`` and ``version``)."""

    name = "fyno"
    label = "Fyno"
    default_host: str | None = "https://api.fyno.io"
    host_placeholder = "https://api.fyno.io"
    rules = RULES
    window_setting: str | None = "batch_size"
    announces_budget = False
    alternate_methods: Mapping[str, tuple[str, ...]] = {}

    def api_root(self, settings: HookSettings, name: str) -> str:
        workspace = (settings.workspace_id or "").strip()
        if not workspace:
            raise ConnectionConfigError(
                f"{name} needs the extra workspace_id (the WSID from the API Keys page of your Fyno account)"
            )
        return f"/v1/{quote(workspace, safe='')}/{settings.version}/profiles/properties"

    def headers(self, token: str) -> dict[str, str]:
        return bearer(token)

    def plan(self, entries: Sequence[Entry], settings: HookSettings) -> list[Call]:
        return [batch_call(entries)] if entries else []

    def probe_call(self) -> Call:
        # An empty batch is refused as invalid once the key and workspace are accepted: nothing changes.
        return Call("POST", BATCH_PATH, {"batch": []}, ())

    def check_auth(self, status: int, body: Any, name: str) -> None:
        if status in (401, 403) or (isinstance(body, dict) and body.get("_message") == "Invalid API details"):
            raise VendorAuthError(
                f"Fyno refused the credentials of {name} (Invalid API details); check the API key and the "
                "workspace_id extra"
            )
        check_http_auth(self, status, body, name)

    def error_message(self, body: Any) -> str:
        return common_error_message(body)

    def effective_status(self, status: int, body: Any) -> tuple[int, str | None]:
        return plain_status(status, body)

    def not_found_reason(self, call: Call, body: Any) -> str | None:
        return None  # the batch endpoint serves every user (unknown users are created): a 404 is the route's

    def blame(self, call: Call, body: Any) -> Blame | None:
        return None

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """Success is 202 with a ``request_id`` (accepted, processed later) and, documented for the batch
        endpoint, one item per entry sent, keyed by operation and naming no user: ``{"$set": "ok", "$unset":
        "ok"}``. An answer without a ``request_id`` confirms nothing (every user ``FAILED``, retryable). Items
        are matched to users by ``distinct_id`` when they carry one, else by position, and by position only
        when there are as many items as users; a user without an item, or whose operation is not ``"ok"`` (no
        other status is documented), is ``FAILED`` (retryable) with what the answer said, never delivered by
        guesswork. Without an item list, the ``request_id`` covers every user."""
        if status >= 400:
            raise rejected(self, status, body)
        if not 200 <= status < 300 or not isinstance(body, dict) or not body.get("request_id"):
            raise not_understood(self, status, body)
        items = next((body[k] for k in _ITEM_KEYS if isinstance(body.get(k), list)), None)
        if items is None:
            return [item for entry in call.entries for item in delivered(entry)]
        matched, why = _match_items(items, call.entries)
        results: Outcomes = []
        for entry in call.entries:
            item = matched.get(entry.ref)
            for name, value in entry.values.items():
                verdict = why if item is None else _operation_status(item, "$unset" if value is None else "$set")
                if verdict == _OK:
                    results.append((entry.ref, AttributeResult(entry.user_id, name, Outcome.DELIVERED, value)))
                else:
                    results.append((entry.ref, AttributeResult(entry.user_id, name, Outcome.FAILED, value, verdict)))
        return results


def _match_items(items: list[Any], entries: Sequence[Entry]) -> tuple[dict[int, Any], str]:
    """Entry ref -> its item, and the reason for the users left without one."""
    named = [item for item in items if isinstance(item, dict) and item.get("distinct_id") is not None]
    if named:
        by_user = {str(item["distinct_id"]): item for item in named}
        matched = {e.ref: by_user[str(e.user_id)] for e in entries if str(e.user_id) in by_user}
        return matched, "Fyno's batch answer has no item naming this user: not confirmed"
    if len(items) == len(entries):
        return {entry.ref: item for entry, item in zip(entries, items, strict=True)}, ""
    return {}, (f"Fyno's batch answer has {len(items)} items for {len(entries)} users sent, naming none: not confirmed")


def _operation_status(item: Any, operation: str) -> str:
    """``"ok"``, or the reason one operation of one batch item is not confirmed."""
    # The user's own id is left out of the reason: one text per cause, so that failures group.
    plain = {k: v for k, v in item.items() if k != "distinct_id"} if isinstance(item, dict) else item
    shown = json.dumps(plain, default=str)[:120]
    if isinstance(item, dict):
        if any(op in item for op in OPERATIONS):
            status = item.get(operation)
        elif "status" in item:
            status = item.get("status")
        else:
            status = "ok" if item.get("success") is True else None
        if isinstance(status, str) and status.strip().lower() == _OK:
            return _OK
    elif isinstance(item, str) and item.strip().lower() == _OK:
        return _OK
    return f'Fyno\'s answer for this user is not "ok" for {operation}: {shown}'


FYNO = FynoApi()
