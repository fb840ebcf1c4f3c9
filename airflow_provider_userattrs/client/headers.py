"""What a vendor's headers say about waiting: ``Retry-After`` and the ``X-RateLimit-*`` budget.

Pure functions of the headers and the time, so they are tested without HTTP. What the client does with
them is :mod:`.pacing`'s (when the next request may go) and :mod:`.retry`'s (when a failed one is resent;
``RetryPolicy`` is re-exported here).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

from airflow_provider_userattrs.client.clock import Clock, SystemClock
from airflow_provider_userattrs.client.pacing import Budget
from airflow_provider_userattrs.client.retry import RetryPolicy


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


def budget_from_headers(headers: Mapping[str, str], now: float, monotonic_now: float) -> Budget | None:
    """The budget an answer announces (``X-RateLimit-Remaining`` and ``-Reset``), on the monotonic clock.

    ``X-RateLimit-Reset`` is a Unix time (AltaTech's docs); a value below a year is taken as seconds from
    now, which some APIs send instead. ``X-RateLimit-Limit`` is optional.
    """
    remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
    if remaining is None or reset is None:
        return None
    try:
        left, reset_value = int(float(remaining)), float(reset)
        limit_text = headers.get("X-RateLimit-Limit")
        limit = int(float(limit_text)) if limit_text is not None else None
    except ValueError:
        return None
    seconds = reset_value - now if reset_value > 31_536_000 else reset_value
    return Budget(max(0, left), monotonic_now + max(0.0, seconds), limit)


__all__ = [
    "Budget",
    "Clock",
    "RetryPolicy",
    "SystemClock",
    "budget_from_headers",
    "parse_retry_after",
    "rate_limit_reset_wait",
]
