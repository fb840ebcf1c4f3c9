"""User.com: users sharing an (attribute, value) go in one mass update; the rest per user."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_userattrs.client.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.client.payload import dumps
from airflow_provider_userattrs.client.validation import VendorRules, scalar_schema
from airflow_provider_userattrs.client.vendor import (
    Blame,
    check_http_auth,
    common_error_message,
    delivered,
    not_understood,
    plain_status,
    rejected,
)
from airflow_provider_userattrs.config import HookSettings

MASS_UPDATE = "/users/mass_update_custom_attributes/"
PER_USER = re.compile(r"^/users/\d+/set_multiple_attributes/$")
UNKNOWN_USER = "User.com: no user with this id in the app"
MIN_GROUP_SIZE = 2
"""Users sharing a value take one mass update from this many on; fewer go per user."""
_ID_LIST = re.compile(r"\[([\d,\s]+)\]")
_PK = re.compile(r"pk\s*\"?(\d+)\"?")
"""Ids named in an ``ids`` refusal: a bracketed list (``[13, 37]``) or DRF's ``Invalid pk "7"``."""


def _named_ids(messages: Any) -> set[int]:
    text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages or "")
    listed = [n for group in _ID_LIST.findall(text) for n in group.split(",") if n.strip()]
    return {int(n) for n in listed + _PK.findall(text)}


def _user_id(raw: Any) -> int:
    if isinstance(raw, bool):
        raise TypeError("a boolean is not a user id")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    raise ValueError("User.com user ids are integers")


RULES = VendorRules(
    vendor_label="User.com",
    user_id_schema={"type": "integer", "minimum": 1, "x-reason": "not a positive integer (User.com ids are integers)"},
    value_schema=scalar_schema(65_535),
    coerce_user_id=_user_id,
    nulls_are_sent=True,
)


def _value_key(name: str, value: Any) -> tuple[str, str]:
    # JSON text keeps True and 1 apart, which plain equality would not.
    return name, dumps(value)


def mass_update_call(members: Sequence[Entry]) -> Call:
    """One mass update of the (attribute, value) every member shares; rebuilds itself for a part of them."""
    ((attribute, value),) = members[0].values.items()
    body = {"ids": [m.user_id for m in members], "attribute": attribute, "value": value}
    return Call("POST", MASS_UPDATE, body, tuple(members), mass_update_call)


def plan_calls(entries: Sequence[Entry], min_group_size: int = MIN_GROUP_SIZE) -> list[Call]:
    """Fewest calls: one mass update per (attribute, value) shared by enough users, one call per other user.

    A user who needs a call of its own anyway (a value nobody else has) takes all its values in it, so
    shared values do not cost it a second call; that can shrink a group below the threshold, so the
    grouping is repeated until it settles.
    """
    solo: set[int] = set()
    while True:
        groups: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.ref not in solo:
                for name, value in entry.values.items():
                    groups[_value_key(name, value)].append(Entry(entry.ref, entry.user_id, {name: value}))
        small = {m.ref for members in groups.values() if len(members) < min_group_size for m in members}
        if not small - solo:
            break
        solo |= small
    calls = [mass_update_call(members) for members in groups.values()]
    for entry in entries:
        if entry.ref in solo:
            path = f"/users/{entry.user_id}/set_multiple_attributes/"
            calls.append(Call("POST", path, dict(entry.values), (entry,)))
    return calls


class UserComApi:
    """Custom attributes of a User.com app (base URL ``https://<app>.user.com``, ``Token`` auth)."""

    name = "usercom"
    label = "User.com"
    default_host: str | None = None
    host_placeholder = "https://<app_subdomain>.user.com"
    rules = RULES
    window_setting: str | None = "mass_update_chunk_size"
    announces_budget = False
    alternate_methods: Mapping[str, tuple[str, ...]] = {MASS_UPDATE: ("POST", "PUT")}
    """Seed 004's heading says PUT, its examples POST: POST first, PUT after a 405 naming POST."""

    def api_root(self, settings: HookSettings, name: str) -> str:
        return "/api/public"

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Token {token}", "Accept": "*/*; version=2"}

    def plan(self, entries: Sequence[Entry], settings: HookSettings) -> list[Call]:
        return plan_calls(entries)

    def probe_call(self) -> Call:
        # No ids: refused as invalid once the key is accepted, 401 otherwise; nothing changes.
        return Call("POST", MASS_UPDATE, {"ids": [], "attribute": "", "value": None}, ())

    def check_auth(self, status: int, body: Any, name: str) -> None:
        check_http_auth(self, status, body, name)

    def effective_status(self, status: int, body: Any) -> tuple[int, str | None]:
        return plain_status(status, body)

    def not_found_reason(self, call: Call, body: Any) -> str | None:
        """An unknown id on the per-user path is a 404 (vendor-notes) in Django REST framework's shape,
        ``{"detail": "Not found."}``: the record's fault. Any other 404 is about the route."""
        if PER_USER.match(call.path) and isinstance(body, dict) and isinstance(body.get("detail"), str):
            return UNKNOWN_USER
        return None

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and "detail" not in body and body:
            # Django REST framework: {"field": ["message", ...]}
            parts = []
            for key, messages in body.items():
                text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
                parts.append(f"{key}: {text}")
            return " | ".join(parts)[:300]
        return common_error_message(body)

    def blame(self, call: Call, body: Any) -> Blame | None:
        """What a refused mass update blames: its ids, or what every id of the call shares.

        User.com answers in Django REST framework's shape, ``{"field": ["message", ...]}``. A refusal that
        names anything but ``ids`` (the attribute, the value, the whole request) holds for every id of the
        call, so splitting cannot help: the chunk is rejected after one call. Unknown ids are named in the
        ``ids`` messages (the wording is not published: ids are read from any bracketed list or ``pk "7"``);
        those are dropped at once and the rest resent. An ``ids`` refusal naming no id: split.
        """
        if not isinstance(body, dict) or not body:
            return None
        if set(body) - {"ids"}:
            return Blame(call.entries, f"User.com rejected the request for every user: {self.error_message(body)}")
        named = _named_ids(body.get("ids"))
        blamed = tuple(entry for entry in call.entries if entry.user_id in named)
        return Blame(blamed, UNKNOWN_USER) if blamed else None

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """A 2xx is success: the seed shows no answer body (the sibling mass update of standard attributes
        answers ``{"status": "ok"}``), so any JSON object or an empty body is accepted, unless it says
        ``status`` is something else than ok."""
        if status >= 400:
            raise rejected(self, status, body)
        if not 200 <= status < 300 or not (body is None or isinstance(body, dict)):
            raise not_understood(self, status, body)
        if isinstance(body, dict) and str(body.get("status", "ok")).lower() != "ok":
            raise not_understood(self, status, body)
        return [item for entry in call.entries for item in delivered(entry)]


USERCOM = UserComApi()
