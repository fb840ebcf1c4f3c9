"""Pacing against a vendor's quota (issue 14), on a fake clock: nobody sleeps, a minute is simulated."""

from __future__ import annotations

import itertools
import random

import pytest

from airflow_provider_userattrs.client.pacing import Budget, LongWait, Pacer, Quota
from tests.client.quota_sim import FixedWindowVendor, SlidingWindowVendor, simulate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_a_fixed_cap_paces_at_the_configured_rate():
    clock = Clock()
    pacer = Pacer(clock=clock, requests_per_second=10)
    for _ in range(21):
        pacer.acquire()
        pacer.on_answer(200)
    assert abs(clock.slept - 2.0) < 1e-9


def test_nothing_declared_and_nothing_heard_never_waits():
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(1000):
        assert pacer.reserve() == 0.0
        pacer.on_answer(200)
    assert clock.slept == 0 and pacer.rate is None


def test_an_announced_budget_is_spent_evenly_until_the_reset_and_not_past_it():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True)
    assert pacer.reserve() == 0.0  # the probe goes alone
    assert pacer.reserve() > 0  # nobody else until the vendor has told the budget
    pacer.on_answer(200, budget=Budget(remaining=9, reset_at=clock.now + 10.0, limit=10))
    sent = []
    while clock.now < 109.9:
        delay = pacer.reserve(defer=False)
        if delay:
            clock.sleep(delay)
            continue
        sent.append(clock.now)
        pacer.on_answer(200, budget=Budget(remaining=9 - len(sent), reset_at=110.0, limit=10))
    assert len(sent) == 9  # the whole budget, and not one request more before the reset
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert max(gaps) - min(gaps) < 0.2  # evenly, not in a burst


def test_a_vendor_that_announces_no_budget_after_all_is_not_held_to_one_request():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True)
    assert pacer.reserve() == 0.0
    pacer.on_answer(200)  # no X-RateLimit-* headers
    assert [pacer.reserve() for _ in range(10)] == [0.0] * 10


def test_a_task_that_may_defer_spends_a_long_window_s_budget_within_defer_after_then_defers():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True, defer_after=60.0)
    pacer.reserve()
    pacer.on_answer(200, budget=Budget(remaining=100, reset_at=clock.now + 3600.0, limit=1000))
    sent = 0
    with pytest.raises(LongWait):
        while True:
            delay = pacer.reserve()
            if delay:
                clock.sleep(delay)
                continue
            sent += 1
            pacer.on_answer(200, budget=Budget(remaining=100 - sent, reset_at=3700.0, limit=1000))
    assert sent == 100 and clock.now - 100.0 <= 60.0  # the hour's budget in a minute, then the wait is deferred


def test_a_probe_that_has_to_wait_is_not_taken_for_one_in_flight():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True)
    pacer.reserve()
    pacer.on_answer(429, retry_after=5.0, budget=Budget(remaining=0, reset_at=clock.now + 2.0, limit=100))
    clock.now += 3.0  # the window has reset, but the vendor's wait is not over: nobody may probe yet
    assert pacer.reserve(defer=False) > 0
    clock.now += 5.0
    assert pacer.reserve(defer=False) == 0.0  # the probe goes (it was not left marked as in flight)


def test_requests_in_flight_count_against_the_budget():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True)
    pacer.reserve()
    pacer.on_answer(200, budget=Budget(remaining=2, reset_at=clock.now + 100.0, limit=100))
    in_flight = 0
    for _ in range(10):
        clock.now += 5.0  # plenty of time between requests: only the budget can hold one back
        if pacer.reserve(defer=False) == 0.0:
            in_flight += 1
    assert in_flight == 2


def test_a_429_cuts_the_pace_once_per_burst_and_holds_everybody_for_a_jittered_wait():
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(100, 10.0), rng=random.Random(7))
    for _ in range(50):
        pacer.reserve()
        pacer.on_answer(200)
        clock.now += 0.1
    pacer.on_answer(429, retry_after=2.0)
    rate = pacer.rate
    pacer.on_answer(429, retry_after=2.0)  # the same burst: cut once, not twice
    assert rate is not None and pacer.rate == rate and rate < 10.0
    delay = pacer.reserve(defer=False)
    assert 2.0 <= delay <= 2.0 * 1.25 + 1e-9  # the vendor's wait, stretched by up to 25 %
    assert pacer.stats.throttled == 2


def test_processes_told_the_same_wait_come_back_at_different_times():
    returns = set()
    for seed in range(8):
        clock = Clock()
        pacer = Pacer(clock=clock, quota=Quota(100, 10.0), rng=random.Random(seed))
        pacer.on_answer(429, retry_after=30.0)
        returns.add(round(pacer.reserve(defer=False), 3))
    assert len(returns) == 8 and min(returns) >= 30.0 and max(returns) - min(returns) > 1.0


def test_a_wait_longer_than_defer_after_is_handed_back_instead_of_slept():
    clock = Clock()
    pacer = Pacer(clock=clock, announces_budget=True, defer_after=60.0)
    pacer.reserve()
    pacer.on_answer(200, budget=Budget(remaining=0, reset_at=clock.now + 3600.0, limit=1000))
    with pytest.raises(LongWait) as raised:
        pacer.reserve()
    assert 3600.0 <= raised.value.seconds <= 3600.0 * 1.25
    assert raised.value.until == pytest.approx(clock.time() + raised.value.seconds)
    assert clock.slept == 0
    assert pacer.reserve(defer=False) >= 3600.0  # a plain hook sleeps instead


def test_a_declared_quota_caps_one_process_at_the_quota():
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(600, 60.0))
    for _ in range(101):
        pacer.acquire()
        pacer.on_answer(200)
    assert abs(clock.slept - 10.0) < 1e-6  # 100 intervals at 10 requests/s


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
def test_processes_sharing_a_declared_quota_converge_on_it(processes):
    """DX-shaped: 429 + Retry-After only, the quota declared on the connection, a sliding window."""
    result = simulate(SlidingWindowVendor(400, 10.0), processes, declare_quota=True, duration=90.0)
    assert result.quota_used >= 0.90, result
    assert result.throttled_share <= 0.02, result


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
def test_processes_sharing_an_announced_budget_spend_it_without_overrunning(processes):
    """AltaTech-shaped: the budget on every answer, a fixed window, nothing declared."""
    result = simulate(FixedWindowVendor(100, 10.0), processes, declare_quota=False, duration=90.0)
    assert result.quota_used >= 0.90, result
    assert result.throttled_share <= 0.02, result


@pytest.mark.parametrize("processes", [2, 4, 8])
def test_tasks_with_a_share_of_the_work_each_finish_together_instead_of_straggling(processes):
    """Each task has its share of 2,400 users: when some finish, the others take over the freed quota."""
    vendor = SlidingWindowVendor(800, 10.0)
    result = simulate(vendor, processes, declare_quota=True, duration=600.0, work=2400 // processes)
    assert result.quota_used >= 0.90, result  # 30 s of quota; it took 136 s with 8 tasks before the quiet boost
    assert result.throttled_share <= 0.02, result
