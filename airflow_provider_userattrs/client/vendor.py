"""What a vendor is to the client: an object that plans calls, reads answers and blames records.

A vendor differs from another in data (URL, payload shape, limits, error mapping) and in a few small
pure functions over that data. Each vendor module (``client/vendors/``) defines one class satisfying
:class:`VendorApi`; the vendor-neutral parts (:mod:`.sender`: when a request goes, what is retried;
:mod:`.delivery`: what an answer settles, how a refused batch is split) take it as an argument. Nothing
here is overridden: the helpers below are plain functions a vendor calls where its rules are the
common ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_userattrs.client.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.client.validation import VendorRules
from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import CallRejected, VendorAuthError, VendorResponseError
from airflow_provider_userattrs.results import AttributeResult, Outcome


@dataclass(frozen=True)
class Blame:
    """What a vendor's refusal of a batch says about its records: these are at fault, for this reason."""

    entries: tuple[Entry, ...]
    reason: str


class VendorApi(Protocol):
    """One vendor's API as the client sees it. Every method is a pure function of its arguments."""

    name: str
    """The vendor's key: the Airflow connection type, the key in reports and in the sandbox."""
    label: str
    """The vendor's name as a person reads it."""
    default_host: str | None
    """The API base URL when the caller gives none (None: the caller must, e.g. User.com's app URL)."""
    host_placeholder: str
    """An example base URL for messages and the connection form."""
    rules: VendorRules
    """What values and ids the vendor takes (checked before sending)."""
    window_setting: str | None
    """Which setting bounds how many users are planned together (None: one user per window)."""
    announces_budget: bool
    """The vendor sends its remaining budget on every answer (AltaTech's ``X-RateLimit-*``)."""
    alternate_methods: Mapping[str, tuple[str, ...]]
    """Paths whose documented method is uncertain, and the methods to try on a 405 that names the one sent
    (User.com's mass update: its docs say PUT and their examples POST)."""

    def api_root(self, settings: HookSettings, name: str) -> str:
        """The path under the base URL where the API lives (``name`` says whose settings, for errors)."""
        ...

    def headers(self, token: str) -> dict[str, str]:
        """Authentication and vendor-specific headers of every request."""
        ...

    def plan(self, entries: Sequence[Entry], settings: HookSettings) -> list[Call]:
        """The calls that carry ``entries``."""
        ...

    def probe_call(self) -> Call:
        """A call that changes nothing, answered differently with and without valid credentials."""
        ...

    def check_auth(self, status: int, body: Any, name: str) -> None:
        """Raise :class:`VendorAuthError` when the answer refuses the credentials."""
        ...

    def effective_status(self, status: int, body: Any) -> tuple[int, str | None]:
        """The HTTP status an answer means, and the vendor's words for it: a vendor that says "rate limited"
        or "down" in a 200 or 4xx body answers as a 429 or a 503 would (the sender then retries it)."""
        ...

    def not_found_reason(self, call: Call, body: Any) -> str | None:
        """A 404 about one record (the reason to reject it), or None: a 404 about the route, a configuration
        error. Only a per-record path can answer the former."""
        ...

    def error_message(self, body: Any) -> str:
        """The vendor's own words in an error answer, for a reason a person reads."""
        ...

    def parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """Outcomes of a call from a 2xx or 4xx answer whose body is JSON (or empty)."""
        ...

    def blame(self, call: Call, body: Any) -> Blame | None:
        """Which records of a refused batch the answer blames (None: it does not say; split)."""
        ...


# -- helpers a vendor uses where its rules are the common ones ------------------------------------------------


def snippet(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters: enough to recognise an answer in a reason."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain_status(status: int, body: Any) -> tuple[int, str | None]:
    """For a vendor whose bodies never contradict the HTTP status."""
    return status, None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def common_error_message(body: Any) -> str:
    """The message of a JSON error body under the usual keys, else a snippet of it."""
    if isinstance(body, dict):
        for key in ("message", "_message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
        return snippet(json.dumps(body))
    return snippet(str(body)) if body is not None else "no body"


def check_http_auth(vendor: VendorApi, status: int, body: Any, name: str) -> None:
    """401 and 403 refuse the credentials, for every vendor."""
    if status in (401, 403):
        raise VendorAuthError(
            f"{vendor.label} refused the credentials of {name} (HTTP {status}: {vendor.error_message(body)}); "
            "check the API token"
        )


def rejected(vendor: VendorApi, status: int, body: Any) -> CallRejected:
    """The vendor said no to a whole call."""
    message = f"{vendor.label} rejected the request (HTTP {status}): {vendor.error_message(body)}"
    return CallRejected(message, body=body)


def not_understood(vendor: VendorApi, status: int, body: Any) -> VendorResponseError:
    """An answer that is not the documented success: reported retryable, with what the vendor said."""
    shown = snippet(json.dumps(body, default=str)) if body is not None else "no body"
    return VendorResponseError(f"{vendor.label} answered HTTP {status} with an answer not understood: {shown}")


def delivered(entry: Entry, names: Iterable[str] | None = None) -> Outcomes:
    """``entry``'s attributes (or those of ``names``) confirmed delivered."""
    chosen: Mapping[str, Any] = (
        entry.values if names is None else {n: entry.values[n] for n in names if n in entry.values}
    )
    return [
        (entry.ref, AttributeResult(entry.user_id, name, Outcome.DELIVERED, value)) for name, value in chosen.items()
    ]


def settled(entries: Sequence[Entry], outcome: Outcome, reason: str, *, not_before: float | None = None) -> Outcomes:
    """Every attribute of ``entries`` ends in ``outcome`` for ``reason``."""
    return [
        (entry.ref, AttributeResult(entry.user_id, name, outcome, value, reason, not_before))
        for entry in entries
        for name, value in entry.values.items()
    ]


def one_call_per_user(path: str, body: Callable[[Entry], Any], entries: Sequence[Entry]) -> list[Call]:
    """The plan of a vendor without a bulk endpoint (AltaTech, DX): one ``POST path`` per user."""
    return [Call("POST", path, body(entry), (entry,)) for entry in entries]


def update_of_nobody(path: str, body: Callable[[Entry], Any]) -> Call:
    """A probe for such a vendor: an update of no user, refused as invalid once the credentials pass and as
    unauthorised otherwise; it changes nothing."""
    return Call("POST", path, body(Entry(0, "", {})), ())
