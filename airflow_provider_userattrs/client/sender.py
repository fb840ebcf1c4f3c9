"""The one place a request is sent: its turn, what is retried, how long to wait, when a wait is too long.

A :class:`Sender` knows HTTP and the vendor's pace, not the vendor's payloads: it is given a
:class:`~airflow_provider_userattrs.client.calls.Call` and hands back the answer, or raises

* :class:`~airflow_provider_userattrs.errors.TransientVendorError` when no usable answer came after the
  retries (408, 429, 5xx, timeouts, connection errors: :func:`is_retried`; a vendor that says "rate limited"
  or "down" inside a 200 or 4xx body is read as the status it means, through the vendor's
  ``effective_status``);
* :class:`~airflow_provider_userattrs.client.pacing.LongWait` when the vendor's quota asks for a wait longer
  than ``defer_after`` and the sender was built to defer long waits (``defer_long_waits``): the caller
  turns it into ``POSTPONED`` outcomes carrying the time they may go.

Every wait goes through :meth:`Sender.sleep`, so that :meth:`Sender.stats` can say how long requests waited.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from airflow_provider_userattrs.client.calls import Call
from airflow_provider_userattrs.client.clock import Clock
from airflow_provider_userattrs.client.headers import budget_from_headers, parse_retry_after
from airflow_provider_userattrs.client.pacing import LongWait, Pacer
from airflow_provider_userattrs.client.payload import dumps
from airflow_provider_userattrs.client.retry import RetryPolicy, send_with_retries
from airflow_provider_userattrs.client.transport import HttpResponse, Transport
from airflow_provider_userattrs.client.vendor import VendorApi
from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import TransientVendorError

NOT_RETRIED_5XX = frozenset({501, 505})
"""Server errors about the request's form (method not implemented, HTTP version), not about the moment."""


def is_retried(status: int) -> bool:
    """Answers that say "not now" rather than "no": 408, 429 and server errors. Retried with backoff, then
    reported ``FAILED`` (retryable): they are never the record's fault."""
    return status in (408, 429) or (500 <= status <= 599 and status not in NOT_RETRIED_5XX)


@dataclass(frozen=True)
class ClientStats:
    """What a client's requests cost so far (read before and after a chunk: the difference is the chunk's)."""

    requests_sent: int = 0
    """HTTP requests made, retries included."""
    throttled_requests: int = 0
    """Answers that were 429."""
    waited_seconds: float = 0.0
    """Seconds requests spent waiting for their turn or for a retry (summed over threads)."""
    quota: tuple[int, float] | None = None
    """The quota the client paces to, ``(requests, window_seconds)``: declared on the connection, or the vendor's
    published one (DX); None when none is declared (what the quota use of a sync is measured against)."""

    def __add__(self, other: ClientStats) -> ClientStats:
        """Two clients' costs together (a hook's over the clients it closed); the later quota."""
        return ClientStats(
            self.requests_sent + other.requests_sent,
            self.throttled_requests + other.throttled_requests,
            self.waited_seconds + other.waited_seconds,
            other.quota or self.quota,
        )


class Sender:
    """Sends calls to one vendor account over one transport, at the pace its quota allows.

    :param transport: the HTTP transport (a pooled urllib3 one, or a test's fake).
    :param vendor: reads what an answer means (``effective_status``); nothing else of the vendor is used.
    :param base_url: the URL the calls' paths are appended to.
    :param settings: timeouts, retries and waits (:class:`~airflow_provider_userattrs.config.HookSettings`).
    :param pacer: when each request may go (shared by every thread of the client).
    :param clock: time as the policies see it.
    :param label: the vendor's name in messages.
    :param defer_long_waits: raise :class:`LongWait` for a wait longer than ``settings.defer_after``
        instead of sleeping it (decided when the client is built: an operator's task defers such waits).
    """

    def __init__(
        self,
        transport: Transport,
        vendor: VendorApi,
        base_url: str,
        settings: HookSettings,
        pacer: Pacer,
        clock: Clock,
        label: str,
        *,
        defer_long_waits: bool = False,
    ) -> None:
        self.transport = transport
        self.vendor = vendor
        self.base_url = base_url
        self.settings = settings
        self.pacer = pacer
        self.clock = clock
        self.label = label
        self.defer_long_waits = defer_long_waits
        self._lock = threading.Lock()
        self._requests_sent = 0

    def stats(self) -> ClientStats:
        pacing = self.pacer.stats
        quota = self.pacer.quota
        declared = (quota.requests, quota.window_seconds) if quota is not None else None
        return ClientStats(self._requests_sent, pacing.throttled, pacing.waited_seconds, declared)

    def policy(self, attempts: int | None = None) -> RetryPolicy:
        settings = self.settings
        return RetryPolicy(
            max_attempts=attempts or settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            max_retry_wait=settings.max_retry_wait,
        )

    def send(self, call: Call, attempts: int | None = None) -> HttpResponse:
        """Send ``call``, retrying what :func:`is_retried` and the transport's errors cover.

        :param attempts: at most this many attempts (default the ``max_attempts`` setting).
        :raises TransientVendorError: no usable answer after the attempts.
        :raises LongWait: the quota asks for a wait longer than ``defer_after`` (only with ``defer_long_waits``).
        """
        policy = self.policy(attempts)
        url = self.base_url + call.path
        body = dumps(call.body).encode()  # Decimals with their exact digits
        return send_with_retries(lambda: self._attempt(call.method, url, body, policy), policy, self.sleep)

    def sleep(self, seconds: float) -> None:
        """Every wait of this sender goes through here, so that the stats can say how long requests waited."""
        if seconds > 0:
            self.pacer.stats.waited_seconds += seconds
            self.clock.sleep(seconds)

    def _attempt(self, method: str, url: str, body: bytes, policy: RetryPolicy) -> HttpResponse:
        """One request: wait for its turn, send, tell the pacer what the vendor said."""
        pacer = self.pacer
        while (delay := pacer.reserve(defer=self.defer_long_waits)) > 0:
            self.clock.sleep(delay)
        with self._lock:
            self._requests_sent += 1
        try:
            response = self.transport.request(
                method, url, body, (self.settings.connect_timeout, self.settings.read_timeout)
            )
        except TransientVendorError:
            pacer.on_no_answer()
            raise
        status, said = self.vendor.effective_status(response.status, response.parsed)
        budget = budget_from_headers(response.headers, self.clock.time(), self.clock.monotonic())
        retry_after = None
        if is_retried(status):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.time())
            if retry_after is None and status == 429 and budget is not None and budget.remaining <= 0:
                retry_after = max(0.0, budget.reset_at - self.clock.monotonic())
        # A wait beyond what this call may sleep makes it give up, and holds the other threads no longer either.
        held = min(retry_after, policy.max_retry_wait) if retry_after is not None else None
        pacer.on_answer(status, retry_after=held if status == 429 else None, budget=budget)
        if not is_retried(status):
            return response
        if self.defer_long_waits and retry_after is not None and retry_after > self.settings.defer_after:
            raise LongWait(self.clock.time() + retry_after, retry_after, f"{self.label} asked to wait")
        raise TransientVendorError(
            f"{self.label} answered HTTP {response.status}"
            + (f" ({said})" if said else "")
            + (f" (asked to wait {retry_after:.0f} s)" if retry_after else ""),
            retry_after=retry_after,
            final=retry_after is not None and retry_after > policy.max_retry_wait,
        )

    def close(self) -> None:
        self.transport.close()
