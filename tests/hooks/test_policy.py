from __future__ import annotations

import email.utils
import random

from airflow_provider_userattrs.hooks.policy import RetryPolicy, Throttle, parse_retry_after, rate_limit_reset_wait


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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_throttle_paces_at_configured_rate():
    clock = Clock()
    throttle = Throttle(clock=clock, requests_per_second=10)
    for _ in range(21):
        throttle.acquire()
    assert abs(clock.slept - 2.0) < 1e-9


def test_unconfigured_throttle_never_waits():
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(1000):
        throttle.acquire()
    assert clock.slept == 0


def test_429_pauses_everybody_and_cuts_the_pace_then_recovers():
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(50):  # 50 requests inside one second
        throttle.acquire()
    throttle.on_throttled(retry_after=2.0)
    throttle.on_throttled(retry_after=2.0)  # the same burst: cut once, not twice
    assert throttle.rate is not None and abs(throttle.rate - 35.0) < 1e-9
    throttle.acquire()
    assert abs(clock.slept - 2.0) < 1e-9  # honoured the vendor's wait
    rate = throttle.rate
    for _ in range(100):
        throttle.on_success()
    assert throttle.rate > rate  # additive increase


def test_429_after_accepted_requests_paces_just_under_what_the_vendor_accepted():
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(40):  # 40 requests accepted within the last second...
        throttle.acquire()
        throttle.on_success()
    for _ in range(10):  # ...then 10 more sent and refused
        throttle.acquire()
    throttle.on_throttled(retry_after=None)
    assert throttle.rate is not None and abs(throttle.rate - 38.0) < 1e-9  # 0.95 x 40, not 0.7 x 50


def test_pause_holds_requests_until_reset():
    clock = Clock()
    throttle = Throttle(clock=clock)
    throttle.pause(5)
    throttle.acquire()
    assert clock.slept == 5
