"""How one request is retried: one attempt counter, one policy object, one loop.

After slack_sdk's ``RetryState`` and retry handlers: :class:`RetryState` counts the attempts of one call
and what they waited; :class:`RetryPolicy` decides from it whether and how long to wait. The loop itself
(:func:`send_with_retries`) is a dozen lines of plain code: what it retries is exactly what
:class:`~airflow_provider_userattrs.errors.TransientVendorError` covers (429, 502, 503, 504, timeouts and
connection errors), never a rejection.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from airflow_provider_userattrs.errors import TransientVendorError

T = TypeVar("T")


@dataclass
class RetryState:
    """The attempts of one call so far."""

    attempts: int = 0
    waited_seconds: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_wait: float = 300.0
    """A vendor asking for a longer wait than this makes the request fail (retryable later) instead."""

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff after attempt number ``attempt`` (1 = the first attempt failed).

        Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the retries of many
        clients best (AWS Architecture Blog, "Exponential Backoff And Jitter"): equal jitter keeps half of
        every wait, so clients that failed together come back together.
        """
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))
        return (rng or random).uniform(0.0, ceiling)

    def wait_before_retry(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Never sooner than the vendor asked for; otherwise the jittered backoff."""
        return max(self.backoff(attempt, rng), retry_after or 0.0)

    def next_wait(self, state: RetryState, error: TransientVendorError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if error.final or state.attempts >= self.max_attempts:
            return None
        return self.wait_before_retry(state.attempts, error.retry_after)


def send_with_retries(attempt: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None]) -> T:
    """Call ``attempt`` until it returns, retrying :class:`TransientVendorError` as ``policy`` says.

    The error that ends the loop says how many attempts were made, so that a reason in the failure file
    tells a person whether the vendor was tried once or six times.
    """
    state = RetryState()
    while True:
        state.attempts += 1
        try:
            return attempt()
        except TransientVendorError as exc:
            wait = policy.next_wait(state, exc)
            if wait is None:
                tries = "1 attempt" if state.attempts == 1 else f"{state.attempts} attempts"
                raise TransientVendorError(
                    f"{exc} (gave up after {tries})", retry_after=exc.retry_after, final=exc.final
                ) from None
            sleep(wait)
            state.waited_seconds += wait
