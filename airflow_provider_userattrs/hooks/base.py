"""The HTTP core shared by every vendor hook.

A vendor differs from another in data: its URL, its payload shape, its limits and how its answers map
to outcomes. This module owns the control flow they all share: validate, plan calls, send them
concurrently over one pooled session with retries and adaptive pacing, split a rejected batch until the
bad records are isolated, and turn every answer into one outcome per user and attribute.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_userattrs import __version__
from airflow_provider_userattrs.config import HookSettings, parse_settings
from airflow_provider_userattrs.errors import (
    CallRejected,
    ConnectionConfigError,
    TransientVendorError,
    VendorAuthError,
    VendorResponseError,
)
from airflow_provider_userattrs.hooks import shared_quota
from airflow_provider_userattrs.hooks.calls import Call, Entry, Outcomes
from airflow_provider_userattrs.hooks.clock import Clock, SystemClock
from airflow_provider_userattrs.hooks.pacing import LongWait, Pacer, Quota
from airflow_provider_userattrs.hooks.policy import budget_from_headers, parse_retry_after
from airflow_provider_userattrs.hooks.retry import RetryPolicy, send_with_retries
from airflow_provider_userattrs.hooks.scheduler import CallScheduler, Window
from airflow_provider_userattrs.hooks.shared_quota import SharedQuota
from airflow_provider_userattrs.hooks.transport import HttpResponse, Transport, Urllib3Transport
from airflow_provider_userattrs.hooks.validation import Validator, VendorRules
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserId, UserResult, UserUpdate

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = f"airflow-provider-userattrs/{__version__}"
RESULTS_PER_WINDOW_FACTOR = 4
"""A window also closes once it holds this many times its size in results: users refused by the validator
take no call but still occupy the window, and a segment of mostly invalid rows must not pile them up."""
SPLIT_CALLS_PER_LEVEL = 8
"""Budget of a rejected batch's splitting: this many calls per halving level (``ceil(log2(size))``), enough
to isolate about four bad records; what is left unisolated is reported retryable, not guessed."""


@dataclass(frozen=True)
class Blame:
    """What a vendor's refusal of a batch says about its records: these are at fault, for this reason."""

    entries: tuple[Entry, ...]
    reason: str


class SplitBudget:
    """The extra calls a rejected batch may still cost while it is split (shared by all its parts)."""

    def __init__(self, size: int) -> None:
        self.left = SPLIT_CALLS_PER_LEVEL * max(1, math.ceil(math.log2(max(size, 2))))
        self.total = self.left
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UserAttributesHook(BaseHook):
    """Base class of the four vendor hooks: one pooled session, retries, pacing, splitting, outcomes.

    A vendor states its identity once (:attr:`vendor`, the connection type, and :attr:`vendor_label`, the
    name people read); Airflow's ``conn_type``, ``hook_name`` and ``default_conn_name`` are derived from it.
    Subclasses provide data and small pure functions: :attr:`rules`, and either :attr:`update_path` with
    :meth:`_user_body` (one call per user) or :meth:`_plan` and :meth:`_probe_call` (batches); then
    :meth:`_parse`, and where the vendor needs them :meth:`_auth_headers`, :meth:`_api_root`,
    :meth:`_check_auth` and :meth:`_blame`.

    :param conn_id: the Airflow connection (its type must match the hook's vendor).
    :param clock: time as the policies see it (tests pass a fake one).
    :param transport: the HTTP transport (tests pass a fake one); default a pooled urllib3 transport.
    :param settings: overrides of the connection's tuning extras (see :class:`HookSettings`).
    """

    conn_name_attr = "conn_id"
    vendor: ClassVar[str] = ""
    """The connection type, and the vendor's key in reports and the sandbox."""
    vendor_label: ClassVar[str] = ""
    """The vendor's name as a person reads it."""
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    default_conn_name: ClassVar[str] = ""
    default_host: ClassVar[str | None] = None
    rules: ClassVar[VendorRules]
    window_setting: ClassVar[str | None] = None
    """Which setting bounds how many users are planned together (``None``: one user per window)."""
    announces_budget: ClassVar[bool] = False
    """The vendor sends its remaining budget on every answer (AltaTech's ``X-RateLimit-*``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.vendor:
            cls.conn_type = cls.vendor
            cls.hook_name = cls.vendor_label
            cls.default_conn_name = f"{cls.vendor}_default"

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._setting_overrides = settings
        self.clock: Clock = clock or SystemClock()
        self._transport: Transport | None = transport
        self._config: tuple[str, HookSettings, str] | None = None
        self._pacer: Pacer | None = None
        self.defer_long_waits = False
        """When True (the operators set it), a wait for the quota longer than ``defer_after`` is not slept:
        the calls concerned end ``POSTPONED`` and :attr:`postponed_until` says when to come back."""
        self.postponed_until: float | None = None
        """Wall-clock time after which postponed users may be sent (the latest wait asked for), or None."""
        self._postponed_lock = threading.Lock()
        self._validator: Validator | None = None
        self._sent_lock = threading.Lock()
        self._requests_sent = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    # -- connection --------------------------------------------------------------------------------

    def _load(self) -> tuple[str, HookSettings, str]:
        """Base URL, settings and token from the Airflow connection, read once."""
        if self._config is None:
            conn = self.get_connection(self.conn_id)
            token = conn.password
            if not token:
                raise ConnectionConfigError(
                    f"{self.vendor_label} connection {self.conn_id!r} has no API token: put it in the password field"
                )
            self._mask(token)
            where = f"{self.vendor_label} connection {self.conn_id!r}"
            settings = parse_settings(conn.extra_dejson or {}, self._setting_overrides, where=where)
            base_url = self._base_url(conn.host, conn.port, conn.schema, settings)
            self._config = (base_url + self._api_root(settings), settings, token)
        return self._config

    @staticmethod
    def _mask(token: str) -> None:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(token)
        except Exception:  # pragma: no cover - masking is best effort outside a task
            log.debug("secret masking unavailable")

    def _base_url(self, host: str | None, port: int | None, schema: str | None, settings: HookSettings) -> str:
        raw = (host or self.default_host or "").strip().rstrip("/")
        if not raw:
            raise ConnectionConfigError(
                f"{self.vendor_label} connection {self.conn_id!r} needs a host (the API base URL, e.g. "
                f"{self.host_placeholder()})"
            )
        if "://" not in raw:
            raw = f"{schema or 'https'}://{raw}"
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionConfigError(f"{self.vendor_label} connection {self.conn_id!r}: bad host URL {raw!r}")
        if port and parts.port is None:
            raw = raw.replace(parts.netloc, f"{parts.netloc}:{port}", 1)
        if parts.scheme == "http" and not _is_loopback(parts.hostname) and not settings.allow_insecure_http:
            raise ConnectionConfigError(
                f"{self.vendor_label} connection {self.conn_id!r}: plain http:// is only allowed to loopback "
                "hosts (the token would travel in clear); use https:// or set the extra allow_insecure_http"
            )
        if not settings.verify_ssl:
            log.warning("%s connection %r: TLS certificate verification is OFF", self.vendor_label, self.conn_id)
        return raw

    @classmethod
    def host_placeholder(cls) -> str:
        return cls.default_host or "https://api.example.com"

    def _api_root(self, settings: HookSettings) -> str:
        """Path under the host where this vendor's API lives."""
        return ""

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _extra_headers(self) -> dict[str, str]:
        return {}

    @property
    def settings(self) -> HookSettings:
        return self._load()[1]

    def check_config(self) -> HookSettings:
        """Read and check the connection now, sending nothing.

        Raises :class:`ConnectionConfigError` naming the connection, the field and what to put there: a
        connection that can never work must fail a task at once, before any row is read.
        """
        settings = self.settings
        self.validator  # noqa: B018 - builds the value rules of attribute_types
        return settings

    def get_conn(self) -> Transport:
        """The pooled HTTP transport, created on first use (never at DAG parse time)."""
        base_url, settings, token = self._load()
        if self._transport is None:
            headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
            headers.update(self._extra_headers())
            headers.update(self._auth_headers(token))
            self._transport = Urllib3Transport(
                base_url, headers, maxsize=settings.concurrency, verify=settings.verify_ssl, label=self.vendor_label
            )
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> UserAttributesHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pacer(self) -> Pacer:
        """When each request may go (:mod:`.pacing`): shared by every thread of this hook."""
        if self._pacer is None:
            settings = self.settings
            quota = None
            if settings.quota_requests and settings.quota_window_seconds:
                quota = Quota(settings.quota_requests, settings.quota_window_seconds)
            self._pacer = Pacer(
                clock=self.clock,
                requests_per_second=settings.requests_per_second,
                quota=quota,
                announces_budget=self.announces_budget,
                defer_after=settings.defer_after,
                shared=self._shared_quota(quota),
            )
        return self._pacer

    def _shared_quota(self, quota: Quota | None) -> SharedQuota | None:
        store = self.settings.quota_store
        if not store:
            return None
        if quota is None:
            raise ConnectionConfigError(
                f"{self.vendor_label} connection {self.conn_id!r}: quota_store needs a declared quota "
                "(quota_requests and quota_window_seconds)"
            )
        base_url, _, token = self._load()
        account = shared_quota.account_key(self.vendor, base_url, token)
        return shared_quota.connect(store, account, quota.requests, quota.window_seconds)

    @property
    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator(self.rules, self.settings.attribute_types)
        return self._validator

    @property
    def requests_sent(self) -> int:
        """HTTP requests made by this hook so far, retries included."""
        return self._requests_sent

    @property
    def throttled_requests(self) -> int:
        """Answers that were 429 so far."""
        return self._pacer.stats.throttled if self._pacer is not None else 0

    @property
    def waited_seconds(self) -> float:
        """Seconds requests spent waiting for their turn or for a retry so far (summed over threads)."""
        return self._pacer.stats.waited_seconds if self._pacer is not None else 0.0

    # -- public operations ---------------------------------------------------------------------------

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """What of ``update`` can be sent, and why the rest cannot. No I/O."""
        return self.validator.validate(update)

    def update_user(self, user_id: UserId, attributes: Mapping[str, Any]) -> UserResult:
        """Set many attributes of one user."""
        return next(iter(self.update_users([UserUpdate(user_id, attributes)])))

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        """Set attributes of many users, concurrently, streaming ``updates`` with bounded memory.

        :param updates: the users and their attributes; a ``(user_id, attributes)`` tuple works too.
        :return: exactly one :class:`UserResult` per input update, in completion order, with ``ref`` handed
            back. A later update of a user waits until an earlier one of the same user has been answered,
            so the last record wins.
        :raises VendorAuthError: as soon as the vendor refuses the credentials.
        """
        settings = self.settings
        self.get_conn()
        scheduler = CallScheduler(self._run_call, settings.concurrency, self.vendor)
        yield from scheduler.run(self._planned(updates))

    def mass_update(self, attribute: str, value: Any, user_ids: Iterable[UserId]) -> Iterator[UserResult]:
        """Set one attribute to one value for many users (one :class:`UserResult` per input id).

        Vendors with a bulk endpoint get one call per chunk of ids; the others are fanned out per user.
        """
        return self.update_users(UserUpdate(user_id, {attribute: value}) for user_id in user_ids)

    def test_connection(self) -> tuple[bool, str]:
        """Check URL and credentials with a request that changes no data (the UI's Test button)."""
        try:
            self.get_conn()
            call = self._probe_call()
            response = self._send(call, attempts=1)
            self._check_auth(response.status, self._json(response))
        except VendorAuthError as exc:
            return False, str(exc)
        except (TransientVendorError, ConnectionConfigError) as exc:
            return False, f"{self.vendor_label}: {exc}"
        except Exception as exc:  # the Test button must answer, whatever happened
            return False, f"{self.vendor_label}: {type(exc).__name__}: {exc}"
        if response.status >= 500:
            return False, f"{self.vendor_label} answered HTTP {response.status}"
        return True, f"Connected to {self.vendor_label}: the API answered and accepted the credentials"

    # -- planning ------------------------------------------------------------------------------------

    def _window_size(self) -> int:
        return int(getattr(self.settings, self.window_setting)) if self.window_setting else 1

    def _windows(self, updates: Iterable[UserUpdate]) -> Iterator[tuple[list[UserResult], list[Entry]]]:
        """Validate updates and group them into planning windows.

        A window closes early when a user repeats, so that one call never carries two versions of a user.
        """
        size = self._window_size()
        results: list[UserResult] = []
        entries: list[Entry] = []
        users: set[UserId] = set()
        for update in updates:
            if not isinstance(update, UserUpdate):
                update = UserUpdate(*update)
            sendable, problems = self.validate(update)
            if sendable is not None and sendable.user_id in users:
                yield results, entries
                results, entries, users = [], [], set()
            result = UserResult(sendable.user_id if sendable else update.user_id, list(problems), update.ref)
            if sendable is not None:
                entries.append(Entry(len(results), sendable.user_id, sendable.attributes))
                users.add(sendable.user_id)
            results.append(result)
            if len(entries) >= size or len(results) >= size * RESULTS_PER_WINDOW_FACTOR:
                yield results, entries
                results, entries, users = [], [], set()
        if results:
            yield results, entries

    def _planned(self, updates: Iterable[UserUpdate]) -> Iterator[Window]:
        for results, entries in self._windows(updates):
            calls = self._plan(entries) if entries else []
            yield Window(results, frozenset(e.user_id for e in entries), calls)

    update_path: ClassVar[str] = ""
    """Where a vendor with one call per user sends it (AltaTech, DX); batch vendors override ``_plan``."""

    def _plan(self, entries: Sequence[Entry]) -> list[Call]:
        """The calls that carry ``entries``: by default one ``POST update_path`` per user."""
        return [Call("POST", self.update_path, self._user_body(entry), (entry,)) for entry in entries]

    def _user_body(self, entry: Entry) -> Any:
        raise NotImplementedError

    def _probe_call(self) -> Call:
        """A call that changes nothing: an update of no user, refused as invalid once the credentials pass
        (and as unauthorised otherwise), which is all the Test button needs to know."""
        return Call("POST", self.update_path, self._user_body(Entry(0, "", {})), ())

    # -- execution -----------------------------------------------------------------------------------

    def _run_call(self, call: Call, budget: SplitBudget | None = None) -> Outcomes:
        """Send one call and turn what happened into one outcome per entry and attribute."""
        try:
            return self._interpret(call, self._send(call))
        except LongWait as wait:
            self._postpone(wait)
            return self._all(call.entries, Outcome.POSTPONED, f"not sent yet: {wait}")
        except CallRejected as exc:
            return self._on_rejected(call, exc, budget or SplitBudget(len(call.entries)))
        except (TransientVendorError, VendorResponseError) as exc:
            return self._all(call.entries, Outcome.FAILED, str(exc))

    def _on_rejected(self, call: Call, exc: CallRejected, budget: SplitBudget) -> Outcomes:
        """A refused batch: reject whom the vendor blamed, split what it did not say, within a budget.

        Splitting only helps where records differ: a refusal of what every record shares (User.com's
        attribute or value) rejects the whole call at once (:meth:`_blame` says so).
        """
        if call.rebuild is None or len(call.entries) == 1:
            return self._all(call.entries, Outcome.REJECTED, str(exc))
        blame = self._blame(call, exc.body)
        if blame is not None:
            blamed = {entry.ref for entry in blame.entries}
            rest = [entry for entry in call.entries if entry.ref not in blamed]
            outcomes = self._all(blame.entries, Outcome.REJECTED, blame.reason)
            return outcomes + (self._resend_part(call.rebuild(rest), exc, budget) if rest else [])
        middle = len(call.entries) // 2
        halves = (call.entries[:middle], call.entries[middle:])
        return [item for half in halves for item in self._resend_part(call.rebuild(half), exc, budget)]

    def _resend_part(self, part: Call, exc: CallRejected, budget: SplitBudget) -> Outcomes:
        if not budget.take():
            reason = (
                f"{self.vendor_label} refused a batch holding this user ({exc}) and the {budget.total} calls "
                "allowed to isolate the bad records ran out first; not sent, a replay sends it again"
            )
            return self._all(part.entries, Outcome.FAILED, reason)
        return self._run_call(part, budget)

    def _postpone(self, wait: LongWait) -> None:
        with self._postponed_lock:
            self.postponed_until = max(self.postponed_until or 0.0, wait.until)

    @staticmethod
    def _all(entries: Sequence[Entry], outcome: Outcome, reason: str) -> Outcomes:
        return [
            (entry.ref, AttributeResult(entry.user_id, name, outcome, value, reason))
            for entry in entries
            for name, value in entry.values.items()
        ]

    def _retry_policy(self, attempts: int | None = None) -> RetryPolicy:
        settings = self.settings
        return RetryPolicy(
            max_attempts=attempts or settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            max_retry_wait=settings.max_retry_wait,
        )

    def _send(self, call: Call, attempts: int | None = None) -> HttpResponse:
        """Send one call, retrying 429/502/503/504 and connection errors (:mod:`.retry`)."""
        base_url, settings, _ = self._load()
        transport = self.get_conn()
        policy = self._retry_policy(attempts)
        url = base_url + call.path
        timeout = (settings.connect_timeout, settings.read_timeout)
        body = json.dumps(call.body, allow_nan=False).encode()
        return send_with_retries(
            lambda: self._attempt(transport, call.method, url, body, timeout, policy), policy, self._sleep
        )

    def _sleep(self, seconds: float) -> None:
        """Every wait of this hook goes through here, so that the report can say how long requests waited."""
        if seconds > 0:
            self.pacer.stats.waited_seconds += seconds
            self.clock.sleep(seconds)

    def _attempt(
        self,
        transport: Transport,
        method: str,
        url: str,
        body: bytes,
        timeout: tuple[float, float],
        policy: RetryPolicy,
    ) -> HttpResponse:
        """One request: wait for its turn, send, tell the pacer what the vendor said."""
        pacer = self.pacer
        while (delay := pacer.reserve(defer=self.defer_long_waits)) > 0:
            self.clock.sleep(delay)
        with self._sent_lock:
            self._requests_sent += 1
        try:
            response = transport.request(method, url, body, timeout)
        except TransientVendorError:
            pacer.on_no_answer()
            raise
        status = response.status
        budget = budget_from_headers(response.headers, self.clock.time(), self.clock.monotonic())
        retry_after = None
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.time())
            if retry_after is None and status == 429 and budget is not None and budget.remaining <= 0:
                retry_after = max(0.0, budget.reset_at - self.clock.monotonic())
        # A wait beyond what this call may sleep makes it give up, and holds the other threads no longer either.
        held = min(retry_after, policy.max_retry_wait) if retry_after is not None else None
        pacer.on_answer(status, retry_after=held if status == 429 else None, budget=budget)
        if status not in RETRY_STATUSES:
            return response
        if self.defer_long_waits and retry_after is not None and retry_after > self.settings.defer_after:
            raise LongWait(self.clock.time() + retry_after, retry_after, f"{self.vendor_label} asked to wait")
        raise TransientVendorError(
            f"{self.vendor_label} answered HTTP {status}"
            + (f" (asked to wait {retry_after:.0f} s)" if retry_after else ""),
            retry_after=retry_after,
            final=retry_after is not None and retry_after > policy.max_retry_wait,
        )

    # -- interpretation ------------------------------------------------------------------------------

    @staticmethod
    def _json(response: HttpResponse) -> Any:
        return response.json()

    def _interpret(self, call: Call, response: HttpResponse) -> Outcomes:
        """Outcomes from an answer; nothing is delivered unless the vendor's documented success says so.

        Answers the vendor module does not recognise become a :class:`VendorResponseError` (reported
        retryable, with a snippet of the body) where the vendor may be down or misrouted, and a
        :class:`CallRejected` where it said no.
        """
        status = response.status
        body = self._json(response)
        self._check_auth(status, body)
        if 300 <= status < 400:
            location = urlsplit(str(response.headers.get("Location") or "")).hostname
            raise VendorResponseError(
                f"{self.vendor_label} answered HTTP {status}, a redirect"
                + (f" to {location}" if location else "")
                + "; redirects are not followed (the token must not travel elsewhere): check the connection's host"
            )
        if body is None and response.data and status < 500:
            message = f"{self.vendor_label} answered HTTP {status} with a body that is not JSON: " + repr(
                _snippet(response.text)
            )
            if 200 <= status < 300:
                raise VendorResponseError(message)
            raise CallRejected(message)
        if status >= 500:
            detail = self._error_message(body) if body is not None else _snippet(response.text)
            raise VendorResponseError(f"{self.vendor_label} answered HTTP {status}: {detail}")
        try:
            return self._parse(call, status, body)
        except (CallRejected, VendorAuthError, VendorResponseError):
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise VendorResponseError(
                f"{self.vendor_label} answered HTTP {status} with an unexpected body "
                f"({type(exc).__name__}): {_snippet(response.text)!r}"
            ) from None

    def _not_understood(self, status: int, body: Any) -> VendorResponseError:
        """An answer that is not the documented success: reported retryable, with what the vendor said."""
        shown = _snippet(json.dumps(body, default=str)) if body is not None else "no body"
        return VendorResponseError(f"{self.vendor_label} answered HTTP {status} with an answer not understood: {shown}")

    def _check_auth(self, status: int, body: Any) -> None:
        if status in (401, 403):
            raise VendorAuthError(
                f"{self.vendor_label} refused the credentials of connection {self.conn_id!r} (HTTP {status}: "
                f"{self._error_message(body)}); check the API token"
            )

    def _error_message(self, body: Any) -> str:
        if isinstance(body, dict):
            for key in ("message", "_message", "error", "detail"):
                value = body.get(key)
                if isinstance(value, str):
                    return value
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return str(value["message"])
            return _snippet(json.dumps(body))
        return _snippet(str(body)) if body is not None else "no body"

    def _rejected(self, status: int, body: Any) -> CallRejected:
        message = f"{self.vendor_label} rejected the request (HTTP {status}): {self._error_message(body)}"
        return CallRejected(message, body=body)

    def _blame(self, call: Call, body: Any) -> Blame | None:
        """Which records of a refused batch the vendor's answer blames (None: it does not say; split)."""
        return None

    def _parse(self, call: Call, status: int, body: Any) -> Outcomes:
        """Outcomes of a call from a 2xx or 4xx answer whose body is JSON (or empty)."""
        raise NotImplementedError

    @staticmethod
    def _delivered(entry: Entry, names: Iterable[str] | None = None) -> Outcomes:
        chosen = entry.values if names is None else {n: entry.values[n] for n in names if n in entry.values}
        return [
            (entry.ref, AttributeResult(entry.user_id, name, Outcome.DELIVERED, value))
            for name, value in chosen.items()
        ]


__all__ = ["Blame", "Call", "Entry", "HookSettings", "Outcomes", "SplitBudget", "UserAttributesHook"]
