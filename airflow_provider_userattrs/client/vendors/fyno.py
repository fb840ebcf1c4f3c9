"""Fyno: users are sent through the batch endpoint; ``null`` becomes ``$unset``; answers are 202."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    types_dates=True,  # a new property takes the type of its value; dates must be ISO 8601 (seeds 001/003)
)

_ITEM_KEYS = ("results", "batch", "items", "statuses")
_ACCEPTED = "accepted"
_UNKNOWN = "unknown"
_OK_WORDS = frozenset({"ok", "success", "succeeded", "accepted", "queued", "processed"})
_ERROR_WORDS = frozenset({"error", "failed", "failure", "rejected", "invalid"})


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

    def blame(self, call: Call, body: Any) -> Blame | None:
        return None

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """The documented success is 202 with a ``request_id`` (accepted, processed later). Fyno documents a
        per-item status in a batch answer but not its shape: a list under ``results``, ``batch``, ``items``
        or ``statuses``, one per user, is read where its items are recognisable; an item that is not is a
        retryable failure (never counted delivered), and so is a user the list has no item for; no list at
        all means the 202 covers every user."""
        if status >= 400:
            raise rejected(self, status, body)
        if not 200 <= status < 300 or not isinstance(body, dict) or str(body.get("status", "")).lower() == "error":
            raise not_understood(self, status, body)
        items = next((body[k] for k in _ITEM_KEYS if isinstance(body.get(k), list)), None)
        results: Outcomes = []
        for index, entry in enumerate(call.entries):
            item = items[index] if items is not None and index < len(items) else None
            verdict = _ACCEPTED if items is None else _item_verdict(item)
            if verdict is _ACCEPTED:
                results.extend(delivered(entry))
                continue
            outcome = Outcome.FAILED if verdict is _UNKNOWN else Outcome.REJECTED
            shown = json.dumps(item, default=str)[:120]
            reason = (
                f"Fyno's answer for this user was not understood: {shown}"
                if verdict is _UNKNOWN
                else f"Fyno refused this user: {verdict}"
            )
            results.extend(
                (entry.ref, AttributeResult(entry.user_id, name, outcome, value, reason))
                for name, value in entry.values.items()
            )
        return results


def _item_verdict(item: Any) -> str:
    """``_ACCEPTED``, ``_UNKNOWN``, or the reason Fyno gave for refusing one batch item."""
    if isinstance(item, str):
        word = item.lower()
        return _ACCEPTED if word in _OK_WORDS else (item if word in _ERROR_WORDS else _UNKNOWN)
    if not isinstance(item, dict):
        return _UNKNOWN
    message = next((str(item[k]) for k in ("_message", "message", "error", "reason") if item.get(k)), None)
    success = item.get("success")
    status = str(item.get("status", "")).lower()
    if success is True or status in _OK_WORDS:
        return _ACCEPTED
    if success is False or status in _ERROR_WORDS or (message and not status):
        return message or status or "refused"
    return _UNKNOWN


FYNO = FynoApi()
