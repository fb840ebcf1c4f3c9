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
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import tenacity
from airflow.sdk import BaseHook

from airflow_provider_userattrs.config import HookSettings, parse_settings
from airflow_provider_userattrs.errors import (
    CallRejected,
    ConnectionConfigError,
    TransientVendorError,
    VendorAuthError,
    VendorResponseError,
)
from airflow_provider_userattrs.hooks.policy import (
    Clock,
    RetryPolicy,
    SystemClock,
    Throttle,
    parse_retry_after,
    rate_limit_reset_wait,
)
from airflow_provider_userattrs.hooks.transport import HttpResponse, Transport, Urllib3Transport
from airflow_provider_userattrs.hooks.validation import Validator, VendorRules
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserId, UserResult, UserUpdate

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "airflow-provider-userattrs/0.1"


@dataclass(frozen=True, slots=True)
class Entry:
    """One user's validated values inside a planning window.

    ``ref`` is the user's position in the window, so that the same user twice stays two results.
    """

    ref: int
    user_id: UserId
    values: Mapping[str, Any]


@dataclass
class _Window:
    """Users planned together; their results are complete once every call of the window has answered."""

    results: list[UserResult]
    users: frozenset[UserId]
    calls_left: int


@dataclass(frozen=True)
class Call:
    """One HTTP request and the entries it carries.

    ``rebuild`` makes the same call for a subset of the entries; it is set on batch calls, which the core
    splits in halves when the vendor rejects them as a whole.
    """

    method: str
    path: str
    body: Any
    entries: tuple[Entry, ...]
    rebuild: Callable[[Sequence[Entry]], Call] | None = None


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

    Subclasses provide data and small pure functions: :attr:`rules`, and either :attr:`update_path` with
    :meth:`_user_body` (one call per user) or :meth:`_plan` and :meth:`_probe_call` (batches); then
    :meth:`_parse`, and where the vendor needs them :meth:`_auth_headers`, :meth:`_api_root`,
    :meth:`_check_auth` and :meth:`_culprits`.
    """

    conn_name_attr = "conn_id"
    vendor: ClassVar[str] = ""
    vendor_label: ClassVar[str] = ""
    default_host: ClassVar[str | None] = None
    rules: ClassVar[VendorRules]
    window_setting: ClassVar[str | None] = None
    """Which setting bounds how many users are planned together (``None``: one user per window)."""

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
        self._throttle: Throttle | None = None
        self._validator: Validator | None = None
        self._sent_lock = threading.Lock()
        self._requests_sent = 0

    default_conn_name: ClassVar[str] = ""

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
    def throttle(self) -> Throttle:
        if self._throttle is None:
            self._throttle = Throttle(clock=self.clock, requests_per_second=self.settings.requests_per_second)
        return self._throttle

    @property
    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator(self.rules, self.settings.attribute_types)
        return self._validator

    @property
    def requests_sent(self) -> int:
        """HTTP requests made by this hook so far, retries included."""
        return self._requests_sent

    # -- public operations ---------------------------------------------------------------------------

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """What of ``update`` can be sent, and why the rest cannot. No I/O."""
        return self.validator.validate(update)

    def update_user(self, user_id: UserId, attributes: Mapping[str, Any]) -> UserResult:
        """Set many attributes of one user."""
        return next(iter(self.update_users([UserUpdate(user_id, attributes)])))

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        """Set attributes of many users, concurrently, streaming ``updates`` with bounded memory.

        Yields exactly one :class:`UserResult` per input update, in completion order. A later update of a
        user waits until an earlier one of the same user has been answered, so the last record wins.
        Raises :class:`VendorAuthError` as soon as the vendor refuses the credentials.
        """
        settings = self.settings
        self.get_conn()
        max_pending = settings.concurrency * 2
        # Every call of every window is its own task: a window planned into many calls (User.com's per-user
        # leftovers) keeps all threads busy instead of one.
        pending: dict[Future[list[tuple[int, AttributeResult]]], _Window] = {}
        # Finished calls announce themselves here: no scan of every pending future after each window.
        finished: queue.SimpleQueue[Future[list[tuple[int, AttributeResult]]]] = queue.SimpleQueue()
        busy: dict[UserId, int] = {}
        executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix=f"userattrs-{self.vendor}")
        try:
            for results, entries in self._windows(updates):
                users = frozenset(e.user_id for e in entries)
                while pending and (len(pending) >= max_pending or any(u in busy for u in users)):
                    yield from self._collect(pending, finished, busy, block=True)
                calls = self._plan(entries) if entries else []
                if not calls:
                    yield from results
                    continue
                window = _Window(results, users, len(calls))
                for user in users:
                    busy[user] = busy.get(user, 0) + 1
                for call in calls:
                    future = executor.submit(self._run_call, call)
                    pending[future] = window
                    future.add_done_callback(finished.put)
                yield from self._collect(pending, finished, busy, block=False)
            while pending:
                yield from self._collect(pending, finished, busy, block=True)
        finally:
            for future in pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)

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
            if len(entries) >= size or len(results) >= size * 4:
                yield results, entries
                results, entries, users = [], [], set()
        if results:
            yield results, entries

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

    @staticmethod
    def _collect(
        pending: dict[Future[list[tuple[int, AttributeResult]]], _Window],
        finished: queue.SimpleQueue[Future[list[tuple[int, AttributeResult]]]],
        busy: dict[UserId, int],
        *,
        block: bool,
    ) -> Iterator[UserResult]:
        done = [finished.get()] if block else []
        while True:
            try:
                done.append(finished.get_nowait())
            except queue.Empty:
                break
        for future in done:
            window = pending.pop(future)
            for ref, outcome in future.result():
                window.results[ref].results.append(outcome)
            window.calls_left -= 1
            if window.calls_left:
                continue
            for user in window.users:
                busy[user] -= 1
                if not busy[user]:
                    del busy[user]
            yield from window.results

    def _run_call(self, call: Call) -> list[tuple[int, AttributeResult]]:
        try:
            response = self._send(call)
            return self._interpret(call, response)
        except CallRejected as exc:
            if call.rebuild is not None and len(call.entries) > 1:
                culprits = self._culprits(call, exc.body)
                if culprits and len(culprits) < len(call.entries):
                    # The vendor named the bad records: reject them, resend the rest at once.
                    rest = [entry for entry in call.entries if entry not in culprits]
                    return self._all(culprits, Outcome.REJECTED, str(exc)) + self._run_call(call.rebuild(rest))
                middle = len(call.entries) // 2
                halves = (call.entries[:middle], call.entries[middle:])
                return [item for half in halves for item in self._run_call(call.rebuild(half))]
            return self._all(call.entries, Outcome.REJECTED, str(exc))
        except (TransientVendorError, VendorResponseError) as exc:
            return self._all(call.entries, Outcome.FAILED, str(exc))

    @staticmethod
    def _all(entries: Sequence[Entry], outcome: Outcome, reason: str) -> list[tuple[int, AttributeResult]]:
        return [
            (entry.ref, AttributeResult(entry.user_id, name, outcome, value, reason))
            for entry in entries
            for name, value in entry.values.items()
        ]

    def _send(self, call: Call, attempts: int | None = None) -> HttpResponse:
        """Send one call with retries on 429/502/503/504 and connection errors."""
        base_url, settings, _ = self._load()
        transport = self.get_conn()
        policy = RetryPolicy(
            max_attempts=attempts or settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            max_retry_wait=settings.max_retry_wait,
        )
        url = base_url + call.path
        timeout = (settings.connect_timeout, settings.read_timeout)

        body = json.dumps(call.body, allow_nan=False).encode()
        # The first attempt goes straight out: most calls succeed, and tenacity's set-up per call was a
        # measurable share of the client's CPU. Tenacity takes over from the first transient failure on.
        try:
            return self._attempt(transport, call.method, url, body, timeout, policy)
        except TransientVendorError as exc:
            if exc.final or policy.max_attempts == 1:
                raise TransientVendorError(f"{exc} (gave up after 1 attempt)") from None
            self.clock.sleep(policy.wait_before_retry(1, exc.retry_after))

        def wait_for(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.wait_before_retry(state.attempt_number + 1, getattr(exc, "retry_after", None))

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts - 1),
            wait=wait_for,
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, TransientVendorError) and not e.final),
            sleep=self.clock.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(transport, call.method, url, body, timeout, policy)
        except TransientVendorError as exc:
            tries = retrying.statistics.get("attempt_number", 1) + 1
            raise TransientVendorError(f"{exc} (gave up after {tries} attempts)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        transport: Transport,
        method: str,
        url: str,
        body: bytes,
        timeout: tuple[float, float],
        policy: RetryPolicy,
    ) -> HttpResponse:
        self.throttle.acquire()
        with self._sent_lock:
            self._requests_sent += 1
        response = transport.request(method, url, body, timeout)
        status = response.status
        now = self.clock.time()
        reset_wait = rate_limit_reset_wait(response.headers, now)
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
            if retry_after is None and status == 429:
                retry_after = reset_wait
            if status == 429:
                self.throttle.on_throttled(retry_after)
            raise TransientVendorError(
                f"{self.vendor_label} answered HTTP {status}"
                + (f" (asked to wait {retry_after:.0f} s)" if retry_after else ""),
                retry_after=retry_after,
                final=retry_after is not None and retry_after > policy.max_retry_wait,
            )
        if reset_wait and reset_wait > 1.0:
            # The quota is spent: hold everybody until it resets rather than collect a 429 per thread. A wait
            # within the header's one-second resolution says nothing a 429 would not say better.
            self.throttle.pause(min(reset_wait, policy.max_retry_wait))
        self.throttle.on_success()
        return response

    # -- interpretation ------------------------------------------------------------------------------

    @staticmethod
    def _json(response: HttpResponse) -> Any:
        return response.json()

    def _interpret(self, call: Call, response: HttpResponse) -> list[tuple[int, AttributeResult]]:
        status = response.status
        body = self._json(response)
        self._check_auth(status, body)
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

    def _culprits(self, call: Call, body: Any) -> list[Entry]:
        """The entries a batch rejection names, when the vendor's answer says; else [] (and the core bisects)."""
        return []

    def _parse(self, call: Call, status: int, body: Any) -> list[tuple[int, AttributeResult]]:
        raise NotImplementedError

    @staticmethod
    def _delivered(entry: Entry, names: Iterable[str] | None = None) -> list[tuple[int, AttributeResult]]:
        chosen = entry.values if names is None else {n: entry.values[n] for n in names if n in entry.values}
        return [
            (entry.ref, AttributeResult(entry.user_id, name, Outcome.DELIVERED, value))
            for name, value in chosen.items()
        ]
