"""Pacing: when the next request may go, kept apart from HTTP so it can be tested with a fake clock.

How long one request waits before its next attempt is :mod:`.retry`'s (``RetryPolicy`` is re-exported here).

* :class:`Throttle` is shared by all threads of a hook. It paces requests when a client-side rate is set,
  and it listens to the vendor's signals (429, ``Retry-After``, ``X-RateLimit-Remaining``/``Reset``): a
  pause asked for by one response holds every thread, and the pace is cut on each 429 and grows back
  slowly (AIMD, as TCP does), so a sync never storms a vendor whose plan limit nobody configured.
"""

from __future__ import annotations

import email.utils
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_userattrs.hooks.clock import Clock, SystemClock
from airflow_provider_userattrs.hooks.retry import RetryPolicy


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, given as seconds or as an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def rate_limit_reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the quota resets when ``X-RateLimit-Remaining`` says it is spent (AltaTech)."""
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if remaining is None or reset is None:
        return None
    try:
        if int(float(remaining)) > 0:
            return None
        reset_at = float(reset)
    except ValueError:
        return None
    # Some APIs send a delta in seconds rather than a Unix time: anything below ~1 year is a delta.
    return max(0.0, reset_at - now) if reset_at > 31_536_000 else max(0.0, reset_at)


@dataclass
class Throttle:
    """Pacing shared by every thread of one hook."""

    clock: Clock = field(default_factory=SystemClock)
    requests_per_second: float | None = None
    """A fixed client-side cap (off by default: plan limits differ from customer to customer)."""
    min_rate: float = 0.2
    decrease_factor: float = 0.7
    """Cut applied to the attempted pace when nothing was accepted in the last second."""
    accepted_factor: float = 0.95
    """Pace after a 429, as a share of what the vendor accepted in the last second (its real limit)."""

    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _next_slot: float = field(default=0.0, init=False)
    _paused_until: float = field(default=0.0, init=False)
    _adaptive_rate: float | None = field(default=None, init=False)
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096), init=False, repr=False)
    _accepted: deque[float] = field(default_factory=lambda: deque(maxlen=4096), init=False, repr=False)
    _last_decrease: float = field(default=float("-inf"), init=False)
    throttled_count: int = field(default=0, init=False)

    @property
    def rate(self) -> float | None:
        """The pace in force now: the smaller of the configured cap and the adaptive one."""
        rates = [r for r in (self.requests_per_second, self._adaptive_rate) if r]
        return min(rates) if rates else None

    def acquire(self) -> None:
        """Block until this thread may send its next request."""
        with self._lock:
            now = self.clock.monotonic()
            slot = max(now, self._paused_until, self._next_slot)
            rate = self.rate
            self._next_slot = slot + (1.0 / rate if rate else 0.0)
            self._recent.append(slot)
        wait = slot - now
        if wait > 0:
            self.clock.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds``: the vendor asked for it."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    def on_throttled(self, retry_after: float | None) -> None:
        """A 429: slow down for everybody, and honour the vendor's wait."""
        with self._lock:
            now = self.clock.monotonic()
            self.throttled_count += 1
            # Many in-flight requests see the same 429 burst: cut the pace once per second, not once each.
            if now - self._last_decrease >= 1.0:
                self._last_decrease = now
                accepted = sum(1 for t in self._accepted if now - 1.0 <= t <= now)
                if accepted:
                    # What the vendor let through in the last second is its limit, measured: pace just under it.
                    target = accepted * self.accepted_factor
                else:
                    recent = float(max(1, sum(1 for t in self._recent if now - 1.0 <= t <= now)))
                    target = min(self.rate or recent, recent) * self.decrease_factor
                self._adaptive_rate = max(self.min_rate, target)
            if retry_after:
                self._paused_until = max(self._paused_until, now + retry_after)

    def on_success(self) -> None:
        """Additive increase: about one more request per second, each second, until unthrottled."""
        with self._lock:
            self._accepted.append(self.clock.monotonic())
            rate = self._adaptive_rate
            if rate is None:
                return
            rate += 1.0 / rate
            self._adaptive_rate = None if rate > 10_000 else rate

__all__ = ["Clock", "RetryPolicy", "SystemClock", "Throttle", "parse_retry_after", "rate_limit_reset_wait"]
