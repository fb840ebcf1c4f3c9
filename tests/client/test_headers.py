from __future__ import annotations

import email.utils
import random

from airflow_provider_userattrs.client.headers import (
    RetryPolicy,
    budget_from_headers,
    parse_retry_after,
    rate_limit_reset_wait,
)


def test_retry_after_seconds_and_http_date():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("0", now) == 0.0
    http_date = email.utils.formatdate(now + 30, usegmt=True)
    assert abs(parse_retry_after(http_date, now) - 30.0) < 1.0  # type: ignore[operator]
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_rate_limit_reset_only_when_quota_is_spent():
    now = 1_000_000_000.0
    assert rate_limit_reset_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now + 42))}, now) == 42
    assert rate_limit_reset_wait({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(int(now + 42))}, now) is None
    assert rate_limit_reset_wait({}, now) is None


def test_backoff_grows_exponentially_with_full_jitter_and_respects_retry_after():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        # Full jitter: the whole range is used, not only its upper half (equal jitter would never go below half).
        assert min(waits) < ceiling / 4 and max(waits) > ceiling * 3 / 4
    assert policy.wait_before_retry(1, retry_after=20.0, rng=rng) == 20.0


def test_budget_from_headers_on_the_monotonic_clock():
    now = 1_000_000_000.0
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(now + 30))}
    budget = budget_from_headers(headers, now, monotonic_now=50.0)
    assert budget is not None and (budget.remaining, budget.reset_at, budget.limit) == (7, 80.0, 100)
    delta = budget_from_headers({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "12"}, now, 50.0)
    assert delta is not None and delta.reset_at == 62.0 and delta.limit is None  # a delta, not a Unix time
    assert budget_from_headers({"X-RateLimit-Remaining": "x", "X-RateLimit-Reset": "1"}, now, 0.0) is None
    assert budget_from_headers({}, now, 0.0) is None
