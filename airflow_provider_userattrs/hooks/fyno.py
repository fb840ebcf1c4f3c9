"""Fyno: users are sent through the batch endpoint; ``null`` becomes ``$unset``; answers are 202."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import ConnectionConfigError, VendorAuthError
from airflow_provider_userattrs.hooks.base import Call, Entry, UserAttributesHook
from airflow_provider_userattrs.hooks.validation import VendorRules, list_schema, string_schema
from airflow_provider_userattrs.results import AttributeResult, Outcome

MAX_STRING = 255

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
)


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


class FynoHook(UserAttributesHook):
    """Sets user profile properties of a Fyno workspace (extras ``workspace_id`` and ``version``)."""

    conn_type = "fyno"
    hook_name = "Fyno"
    default_conn_name = "fyno_default"
    vendor = "fyno"
    vendor_label = "Fyno"
    default_host = "https://api.fyno.io"
    rules = RULES
    window_setting = "batch_size"

    def _api_root(self, settings: HookSettings) -> str:
        workspace = (settings.workspace_id or "").strip()
        if not workspace:
            raise ConnectionConfigError(
                f"Fyno connection {self.conn_id!r} needs the extra workspace_id (the WSID from the API Keys page "
                "of your Fyno account)"
            )
        return f"/v1/{quote(workspace, safe='')}/{settings.version}/profiles/properties"

    def _plan(self, entries: Sequence[Entry]) -> list[Call]:
        return [self._batch(entries)] if entries else []

    def _batch(self, entries: Sequence[Entry]) -> Call:
        return Call("POST", "/batch", {"batch": [batch_item(e) for e in entries]}, tuple(entries), self._batch)

    def _probe_call(self) -> Call:
        # An empty batch is refused as invalid once the key and workspace are accepted: nothing changes.
        return Call("POST", "/batch", {"batch": []}, ())

    def _check_auth(self, status: int, body: Any) -> None:
        if status in (401, 403) or (isinstance(body, dict) and body.get("_message") == "Invalid API details"):
            raise VendorAuthError(
                f"Fyno refused the credentials of connection {self.conn_id!r} (Invalid API details); check the "
                "API key and the workspace_id extra"
            )
        super()._check_auth(status, body)

    def _parse(self, call: Call, status: int, body: Any) -> list[tuple[int, AttributeResult]]:
        if status >= 400:
            raise self._rejected(status, body)
        statuses = body.get("results") if isinstance(body, dict) else None
        results: list[tuple[int, AttributeResult]] = []
        for index, entry in enumerate(call.entries):
            item = statuses[index] if isinstance(statuses, list) and index < len(statuses) else None
            if isinstance(item, dict) and str(item.get("status", "ok")).lower() not in ("ok", "success", "accepted"):
                reason = f"Fyno refused this user: {item.get('_message') or item.get('message') or item.get('status')}"
                results.extend(
                    (entry.ref, AttributeResult(entry.user_id, name, Outcome.REJECTED, value, reason))
                    for name, value in entry.values.items()
                )
            else:
                # 202: accepted, processed asynchronously. That is delivery as far as Fyno's API can tell.
                results.extend(self._delivered(entry))
        return results
