"""A request quota per vendor account, shared by every connection, client and process that talks to the sandbox.

Vendors count requests per account, not per connection (vendor-notes: "Quotas are per account, not per
client"): two Airflow workers on one key share one budget. The token bucket of ``Faults.rate_limit`` smooths
a rate; a quota is a budget over a window, the way the vendors publish theirs (AltaTech plans "as low as
1,000 requests an hour", DX "1,000 requests a minute per account, sliding window"). The sandbox keeps one
budget per vendor for every token it accepts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

KINDS = ("fixed", "sliding")


@dataclass(frozen=True)
class Quota:
    """At most ``requests`` per ``window_seconds``.

    ``fixed``: windows aligned on multiples of ``window_seconds`` since the Unix epoch (a minute quota
    resets at every full minute); the count starts again at each boundary. ``sliding``: at most
    ``requests`` in any ``window_seconds`` (DX documents a sliding window).
    """

    requests: int
    window_seconds: float
    kind: str = "fixed"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Quota:
        unknown = set(values) - {"requests", "window_seconds", "kind"}
        if unknown:
            raise ValueError(f"unknown quota keys {sorted(unknown)}; known: kind, requests, window_seconds")
        if "requests" not in values or "window_seconds" not in values:
            raise ValueError("a quota needs requests and window_seconds")
        quota = cls(int(values["requests"]), float(values["window_seconds"]), str(values.get("kind", "fixed")))
        if quota.requests < 1 or quota.window_seconds <= 0:
            raise ValueError("a quota needs requests >= 1 and window_seconds > 0")
        if quota.kind not in KINDS:
            raise ValueError(f"quota kind must be one of {KINDS}, not {quota.kind!r}")
        return quota

    def least_seconds(self, accepted: int) -> float:
        """The shortest first-to-last span in which the quota lets ``accepted`` requests through.

        Sliding: ``requests`` at once, then ``requests`` more every window: ``floor((A-1)/N) * W``. Fixed: the
        first window's budget can be spent at its very end and the next one's at its very start, so two
        windows cost no time: ``max(0, ceil(A/N) - 2) * W``.
        """
        if accepted <= 1:
            return 0.0
        if self.kind == "sliding":
            return (accepted - 1) // self.requests * self.window_seconds
        return max(0, math.ceil(accepted / self.requests) - 2) * self.window_seconds


@dataclass(frozen=True)
class Admission:
    """The quota's word on one request, and what the vendor tells the client about its budget."""

    allowed: bool
    remaining: int
    reset_at: float
    """Unix time at which a request is admitted again: the fixed window's end, or when the oldest counted
    request leaves the sliding window (now, when nothing is counted)."""
    retry_after: float
    """Seconds until a refused request would be admitted (0 when allowed)."""


class QuotaCounter:
    """One vendor account's budget under one :class:`Quota`, and what it let through (not thread-safe:
    the sandbox state's lock guards it)."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.accepted = 0
        self.throttled = 0
        self.first_accepted: float | None = None
        self.last_accepted: float | None = None
        self._window_start = -math.inf
        self._count = 0
        self._times: deque[float] = deque()

    def admit(self, now: float) -> Admission:
        """Count the request if the budget allows it; refuse it otherwise (a refused request costs nothing)."""
        used = self._used(now)
        if used >= self.quota.requests:
            self.throttled += 1
            reset_at = self._reset_at(now)
            return Admission(False, 0, reset_at, max(reset_at - now, 0.0))
        if self.quota.kind == "fixed":
            self._count += 1
        else:
            self._times.append(now)
        self.accepted += 1
        self.first_accepted = now if self.first_accepted is None else self.first_accepted
        self.last_accepted = now
        return Admission(True, self.quota.requests - used - 1, self._reset_at(now), 0.0)

    def peek(self, now: float) -> Admission:
        """The budget as it stands, counting nothing (for headers on answers the quota did not judge)."""
        used = self._used(now)
        left = max(self.quota.requests - used, 0)
        reset_at = self._reset_at(now)
        return Admission(left > 0, left, reset_at, 0.0 if left else max(reset_at - now, 0.0))

    def _used(self, now: float) -> int:
        window = self.quota.window_seconds
        if self.quota.kind == "fixed":
            start = math.floor(now / window) * window
            if start != self._window_start:
                self._window_start, self._count = start, 0
            return self._count
        while self._times and self._times[0] <= now - window:
            self._times.popleft()
        return len(self._times)

    def _reset_at(self, now: float) -> float:
        if self.quota.kind == "fixed":
            return self._window_start + self.quota.window_seconds
        return self._times[0] + self.quota.window_seconds if self._times else now

    def stats(self) -> dict[str, Any]:
        """Counts, and ``quota_used``: the least time the quota allows for the accepted requests over the time
        they took (first to last accepted); 1.0 means the client could not have gone faster."""
        seconds = (
            self.last_accepted - self.first_accepted
            if self.first_accepted is not None and self.last_accepted is not None
            else 0.0
        )
        least = self.quota.least_seconds(self.accepted)
        return {
            "window": {
                "requests": self.quota.requests,
                "window_seconds": self.quota.window_seconds,
                "kind": self.quota.kind,
            },
            "accepted": self.accepted,
            "throttled": self.throttled,
            "first_accepted": self.first_accepted,
            "last_accepted": self.last_accepted,
            "seconds": round(seconds, 6),
            "least_seconds": least,
            "quota_used": round(min(least / seconds, 1.0), 4) if seconds > 0 else None,
        }
