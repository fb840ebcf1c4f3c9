"""Pacing against a vendor's quota (issues 14 and 24), on a fake clock: nobody sleeps, minutes are simulated.

The simulations (:mod:`tests.client.quota_sim`) are deterministic: every random draw comes from a seeded
``random.Random``, so a seed gives the same run every time. Where the outcome depends on the seed (processes
starting at different instants), several seeds are run and the assertions hold for each.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable

import pytest

from airflow_provider_userattrs.client.pacing import Budget, LongWait, Pacer, Quota
from airflow_provider_userattrs.client.quota_share import WindowShare
from tests.client.quota_sim import FixedWindowVendor, SimResult, SlidingWindowVendor, simulate


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


def busiest(times: list[float], window: float) -> int:
    """The most of ``times`` in any ``window`` seconds."""
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


def runs(
    seeds: int,
    vendor: Callable[[], SlidingWindowVendor | FixedWindowVendor],
    processes: int,
    work: int,
    *,
    anywhere: bool = False,
    latency: float = 0.02,
) -> list[SimResult]:
    """A declared quota, ``simulate`` once per seed on a fresh ``vendor()``, each of ``processes`` getting ``work``
    requests accepted, starting within the first 0.1 s, in an order drawn per seed (as forked tasks do: the quota
    benchmark's start within 0.1 s). ``anywhere``: the first one starts at a point of the vendor's first second drawn
    per seed, not at its start (a fixed window's phase is not the client's to choose). ``latency``: seconds a request
    takes there and back."""
    results = []
    for seed in range(1, seeds + 1):
        draw = random.Random(seed)
        offset = draw.uniform(0, 1.0) if anywhere else 0.0
        starts = [offset + draw.uniform(0, 0.1) for _ in range(processes)]
        results.append(
            simulate(
                vendor(),
                processes,
                declare_quota=True,
                duration=600.0,
                work=work,
                seed=seed,
                starts=starts,
                latency=latency,
            )
        )
    return results


def announced_budget_run(processes: int, seed: int, starts: list[float]) -> SimResult:
    """The quota benchmark's AltaTech case in the simulation: 200 per fixed 5 s announced on every answer, nothing
    declared, 1,200 requests split evenly among ``processes`` starting at ``starts``."""
    return simulate(
        FixedWindowVendor(200, 5.0),
        processes,
        declare_quota=False,
        duration=600.0,
        work=1200 // processes,
        seed=seed,
        starts=starts,
    )


# -- no quota declared, a fixed cap, an announced budget ----------------------------------------------------------


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
    pacer.reserve()
    pacer.on_answer(200, budget=Budget(remaining=0, reset_at=clock.now + 1.0, limit=10))  # a window that ends
    clock.sleep(pacer.reserve(defer=False))
    assert pacer.reserve() == 0.0  # the probe of the next window goes alone
    assert pacer.reserve() > 0  # nobody else until the vendor has told the budget
    reset = clock.now + 10.0
    pacer.on_answer(200, budget=Budget(remaining=9, reset_at=reset, limit=10))
    sent = []
    while clock.now < reset - 0.1:
        delay = pacer.reserve(defer=False)
        if delay:
            clock.sleep(delay)
            continue
        sent.append(clock.now)
        pacer.on_answer(200, budget=Budget(remaining=9 - len(sent), reset_at=reset, limit=10))
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
    # The hour's budget in a minute (but the last 8: in its first window a process leaves them to others it does not
    # know of yet), then the wait is deferred.
    assert sent == 92 and clock.now - 100.0 <= 60.0


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


def test_without_a_declared_quota_a_429_cuts_the_pace_once_per_burst_and_holds_everybody_for_a_jittered_wait():
    clock = Clock()
    pacer = Pacer(clock=clock, rng=random.Random(7))
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
    for quota, least in ((None, 30.0), (Quota(100, 10.0), 29.0)):  # a declared quota reads 30 as 29 to 30
        returns = set()
        for seed in range(8):
            clock = Clock()
            pacer = Pacer(clock=clock, quota=quota, rng=random.Random(seed))
            pacer.on_answer(429, retry_after=30.0)
            returns.add(round(pacer.reserve(defer=False), 3))
        assert len(returns) == 8 and min(returns) >= least and max(returns) - min(returns) > 1.0


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


# -- a declared quota, one process ---------------------------------------------------------------------------------


def send(pacer: Pacer, clock: Clock, until: float, answer: int = 200) -> list[float]:
    """One thread sending until ``until`` (fake clock), every answer ``answer``; the send times."""
    sent = []
    while clock.now < until:
        delay = pacer.reserve(defer=False)
        if delay:
            clock.sleep(delay)
            continue
        sent.append(clock.now)
        pacer.on_answer(answer)
    return sent


def test_a_declared_quota_is_never_exceeded_by_one_process_in_any_window_and_is_used():
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(100, 10.0))
    sent = send(pacer, clock, until=200.0)  # the fake clock starts at 100
    assert busiest(sent, 10.0) <= 100
    steady = [t for t in sent if t >= 120.0]  # after the start (below the quota, doubling every 2.5 s)
    assert len(steady) >= 0.95 * 100 * (200.0 - 120.0) / 10.0


def test_a_long_window_s_quota_caps_one_process_at_its_rate():
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(600, 60.0))
    for _ in range(101):
        pacer.acquire()
        pacer.on_answer(200)
    assert abs(clock.slept - 10.0) < 1e-6  # 100 intervals at 10 requests/s


def test_a_short_window_is_kept_as_a_share_and_a_long_one_paced_by_aimd():
    """``SHARE_WINDOW_LIMIT``: a share per window where a second's reaction is a large part of the window."""
    for window, by_share in ((5.0, True), (29.0, True), (30.0, False), (60.0, False)):
        clock = Clock()
        pacer = Pacer(clock=clock, quota=Quota(int(window * 20), window), rng=random.Random(1))
        send(pacer, clock, until=100.0 + window)  # past the start
        pacer.reserve()
        pacer.on_answer(429, retry_after=1.0)
        assert (pacer.share is not None) is by_share, window
        if not by_share:
            assert pacer.rate is not None and pacer.rate < 20.0  # AIMD: the pace was cut


def test_a_429_makes_what_the_process_has_in_the_window_its_share_and_it_keeps_to_it():
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(400, 10.0), rng=random.Random(3))
    first = send(pacer, clock, until=108.0)  # starts at 100 a window, doubling every 2.5 s
    pacer.reserve()
    pacer.on_answer(429, retry_after=2.0)  # the account's window is full: the refused request is not in it
    in_window = sum(1 for t in first if t > clock.now - 10.0)
    assert pacer.share == in_window
    refused_at = clock.now
    later = send(pacer, clock, until=clock.now + 12.0)  # no probe this early (the first comes after 22-67 s)
    assert busiest([t for t in first if t > refused_at - 10.0] + later, 10.0) == in_window


def test_requests_in_flight_when_the_window_fills_are_not_part_of_the_share():
    """Sent into the window the 429 says is full, they are refused too: counted, 8 processes at 100 ms a request
    took 26-28 each of 200 and drew 429s until the taken rule cut them to 21."""
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(400, 10.0), rng=random.Random(3))
    first = send(pacer, clock, until=108.0)
    out = 0
    while out < 4:  # four more out, not yet answered
        delay = pacer.reserve(defer=False)
        clock.sleep(delay)
        out += not delay
    pacer.on_answer(429, retry_after=2.0)  # the first of them: three still out
    assert pacer.share == sum(1 for t in first if t > clock.now - 10.0)


def test_whole_second_retry_after_is_read_as_a_bound_not_a_wait():
    """Retry-After 1 never holds the process: a sliding window at its limit frees a slot within the second, and a
    fixed window ends within it, which the process finds by sending one request at a time (every tenth of a second)
    until one is accepted; holding it a whole second after two 429s lost most of a fixed window of one second."""
    clock = Clock()
    pacer = Pacer(clock=clock, quota=Quota(1000, 10.0), rng=random.Random(1))
    send(pacer, clock, until=100.05)  # a few requests: still starting (a 429 this early does not end it)
    pacer.reserve()
    pacer.on_answer(429, retry_after=1.0)
    assert pacer.reserve(defer=False) == pytest.approx(0.1)  # the next one a tenth of a second after the 429
    pacer.on_answer(429, retry_after=1.0)  # again, with no success between
    assert pacer.reserve(defer=False) == pytest.approx(0.1)  # still not a second
    clock.now += 2.0
    pacer.on_answer(200)
    pacer.on_answer(429, retry_after=4.0)  # the window was filled in a burst: nothing frees for 3 to 4 s
    assert 3.0 <= pacer.reserve(defer=False) <= 3.75


# -- N processes on one quota (the simulation) --------------------------------------------------------------------


@pytest.mark.parametrize("processes", [4, 8])
def test_processes_sharing_a_declared_sliding_quota_use_it_with_few_429s(processes):
    """DX-shaped (issue 24): 429 + whole-second Retry-After only, 200 per sliding 5 s, 2,400 requests split
    evenly. Before: 83-92 % of the sustained rate used with 1.6-3.5 % of requests answered 429."""
    results = runs(8, lambda: SlidingWindowVendor(200, 5.0), processes, work=2400 // processes)
    used = [r.quota_used for r in results]
    assert statistics.mean(used) >= 0.95 and min(used) >= 0.91, results
    assert max(r.throttled_share for r in results) <= 0.008, results


@pytest.mark.parametrize("processes", [4, 8])
def test_processes_a_real_vendor_s_round_trip_away_keep_to_shares_that_add_up_to_the_quota(processes):
    """The same quota at 100 ms a request (a SaaS API from a cloud worker, not the 20 ms above): a 429's count
    included the requests still in flight, so 8 processes learnt 26-28 each of 200, more than the quota, and drew
    429s until the taken rule cut them (these 8 seeds: 79-87 % used, 2.6 % refused at most; now 88-93 %, 1.2 %).
    4 processes were about as well off either way (93-97 %, 1.3-1.4 %)."""
    results = runs(8, lambda: SlidingWindowVendor(200, 5.0), processes, work=2400 // processes, latency=0.1)
    used = [r.quota_used for r in results]
    assert statistics.mean(used) >= 0.90 and min(used) >= 0.86, results
    assert max(r.throttled_share for r in results) <= 0.015, results


def test_tasks_forked_one_after_another_learn_even_shares_though_the_first_starts_early():
    """The quota benchmark's shape: 8 tasks on 200 per sliding 5 s, the first forked a quarter second before the
    others (which start within 50 ms of one another). With a start doubling every 1.25 s it ramped further by the
    time the window filled and kept a larger share, and the task left with the least finished last (16 seeds: 91.5 %
    used at the lowest, 94.1 % on average); doubling every 2 s, 95.8 % and 96.0 %."""
    used = []
    for seed in range(1, 17):
        draw = random.Random(seed)
        starts = [0.0] + [0.25 + draw.uniform(0, 0.05) for _ in range(7)]
        draw.shuffle(starts)
        result = simulate(
            SlidingWindowVendor(200, 5.0), 8, declare_quota=True, duration=600.0, work=300, seed=seed, starts=starts
        )
        assert result.throttled_share <= 0.008, (seed, result)
        used.append(result.quota_used)
    assert min(used) >= 0.95, used


def test_processes_sharing_a_short_fixed_window_use_it_with_few_429s():
    """A fixed window of 40 per second, 429 + Retry-After 1 (the time to its end, rounded up), 4 processes.
    Before: 69-77 % used with 4.8-6.4 % 429s (AIMD); 76-99 % with shares whose start doubled every quarter
    window (0.25 s: the race for the first full window's last slots gave 8 to 12 each); 78-99 % (16 seeds: mean
    92 %) with those shares kept as counted (9 or 11 of 40: the process at 9 finishes last)."""
    results = runs(8, lambda: FixedWindowVendor(40, 1.0, announces_budget=False), 4, work=300)
    used = [r.quota_used for r in results]
    assert statistics.mean(used) >= 0.95 and min(used) >= 0.93, results
    assert max(r.throttled_share for r in results) <= 0.015, results


def test_processes_starting_anywhere_in_a_short_fixed_window_measure_their_shares_where_it_ends():
    """The same fixed window, the processes starting at any point of the vendor's second: a count of the last second
    reached into the window before and gave 13-18 each of 40 (16 seeds: 70-99 % used, mean 85 %, median 85 %).
    Measured where a window ends (the first request accepted after a run of 429s), each has its 10."""
    results = runs(16, lambda: FixedWindowVendor(40, 1.0, announces_budget=False), 4, work=300, anywhere=True)
    used = [r.quota_used for r in results]
    refused = [r.throttled_share for r in results]
    assert statistics.mean(used) >= 0.93 and statistics.median(used) >= 0.97, results
    assert statistics.mean(refused) <= 0.015 and max(refused) <= 0.025, results


def test_tasks_in_a_pool_that_start_and_finish_at_different_times_share_dx_s_quota():
    """DX's own quota (1,000 a minute, sliding), 16 chunks of 600 users through a pool of 4 slots: each chunk
    starts a second after another finishes, into a window still full of the finished one's requests."""
    for seed in (1, 2):
        result = simulate(
            SlidingWindowVendor(1000, 60.0),
            16,
            declare_quota=True,
            duration=3600.0,
            work=600,
            seed=seed,
            slots=4,
        )
        assert result.quota_used >= 0.90, result
        assert result.throttled_share <= 0.015, result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_task_starting_as_another_finishes_takes_over_its_share(seed):
    """Four tasks one window apart, each alone able to spend the quota: a newcomer finds the window full of its
    predecessor's requests (a 429 with a slot free within the second) and takes its pace over a whole window as
    its share, instead of the few requests it got in the part of the window it has lived (seed 1: 89 % used)."""
    result = simulate(
        SlidingWindowVendor(400, 10.0),
        4,
        declare_quota=True,
        duration=600.0,
        work=400,
        starts=[0, 10, 20, 30],
        seed=seed,
    )
    assert result.quota_used >= 0.90, result
    assert result.throttled_share <= 0.015, result


@pytest.mark.parametrize("processes", [2, 4, 8])
def test_tasks_with_a_share_of_the_work_each_finish_together_instead_of_straggling(processes):
    """Each task has its share of 2,400 users on 800 per sliding 10 s: nobody straggles at an old share."""
    vendor = SlidingWindowVendor(800, 10.0)
    result = simulate(vendor, processes, declare_quota=True, duration=600.0, work=2400 // processes)
    assert result.quota_used >= 0.88, result  # 30 s of quota; 136 s with 8 tasks before issue 14's fix
    assert result.throttled_share <= 0.01, result


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
def test_processes_sharing_an_announced_budget_spend_it_without_overrunning(processes):
    """AltaTech-shaped: the budget on every answer, a fixed window, nothing declared."""
    result = simulate(FixedWindowVendor(100, 10.0), processes, declare_quota=False, duration=90.0)
    assert result.quota_used >= 0.95, result
    assert result.throttled == 0, result


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
def test_processes_with_a_share_of_the_work_spend_an_announced_budget_without_a_429(processes):
    """The quota benchmark's AltaTech case: 200 per fixed 5 s announced, 1,200 users split evenly, processes
    started within 0.1 s. The budget's last requests go one to each process: counting the others rounded to the
    nearest, two processes that counted one fewer both took the last one (seed 8 with 8 processes: a 429; none in
    64 other runs of 2, 4 or 8)."""
    for seed in range(1, 17):
        draw = random.Random(1000 + seed)
        result = announced_budget_run(processes, seed, [draw.uniform(0, 0.1) for _ in range(processes)])
        assert result.quota_used >= 0.95, (seed, result)
        assert result.throttled == 0, (seed, result)


def test_processes_that_start_in_an_announced_window_s_last_moment_wait_for_its_reset():
    """8 processes started together 0.12 s before a fixed window of 200 ends: each read the whole remainder as its
    own and sent it before an answer came back (this seed: 185 429s). In its first window, with less than a second
    left, a process waits for the reset."""
    draw = random.Random(7)
    starts = [4.88 + draw.uniform(0, 0.05) for _ in range(8)]
    result = announced_budget_run(8, 7, starts)
    assert result.throttled == 0, result
    assert result.quota_used >= 0.95, result


@pytest.mark.parametrize("processes", [4, 8])
def test_a_task_started_before_the_others_leaves_them_the_last_requests_of_its_first_window(processes):
    """The first task forked a quarter second before the others, at any point of the vendor's fixed window: it had
    most of the window's answers, counted too few others from them and took one of the last requests with them
    (64 seeds: 6 runs of 4 tasks and 22 of 8 drew a 429). In its first window a process leaves the last 8."""
    used = []
    for seed in range(1, 33):
        draw = random.Random(1000 + seed)
        starts = [0.0] + [0.25 + draw.uniform(0, 0.05) for _ in range(processes - 1)]
        phase = draw.uniform(0, 5.0)
        result = announced_budget_run(processes, seed, [phase + start for start in starts])
        assert result.throttled == 0, (seed, result)
        used.append(result.quota_used)
    assert min(used) >= 0.95, used


def test_one_process_alone_gets_the_whole_declared_quota_without_a_429():
    result = simulate(SlidingWindowVendor(200, 5.0), 1, declare_quota=True, duration=600.0, work=2400)
    assert result.quota_used >= 0.97 and result.throttled == 0, result


# -- one process's share (WindowShare) ----------------------------------------------------------------------------


def test_a_new_process_doubles_its_start_no_faster_than_every_two_seconds_nor_slower_than_once_a_window():
    """Doubling every quarter window, a 1-s window's start outran the answers it learns its share from, and a 5-s
    window's let a task forked a quarter second early learn a larger share than the others."""
    fixed = WindowShare(40, 1.0, rng=random.Random(1))
    fixed.ready_at(0.0, 0)
    assert fixed.allowance == 10  # a quarter of the quota
    fixed.ready_at(1.0, 0)
    assert fixed.allowance == pytest.approx(20)  # once a window: a second later, not a quarter second
    sliding = WindowShare(200, 5.0, rng=random.Random(1))
    sliding.ready_at(0.0, 0)
    sliding.ready_at(1.25, 0)
    assert sliding.allowance == pytest.approx(50 * 2**0.625)  # not yet doubled a quarter window on
    sliding.ready_at(2.0, 0)
    assert sliding.allowance == pytest.approx(100)  # two seconds on
    longer = WindowShare(400, 10.0, rng=random.Random(1))
    longer.ready_at(0.0, 0)
    longer.ready_at(2.5, 0)
    assert longer.allowance == pytest.approx(200)  # a longer window: every quarter window


def test_a_429_during_a_probe_is_its_answer_even_to_a_request_within_the_share():
    """The probe's own requests crowd out the process's next ones: two such 429s used to count as another process
    taking its turns, and made the probe's count its share (25 became 27.55 here; 25 became 33 in the sim)."""
    share = WindowShare(200, 5.0, rng=random.Random(1))
    share.ready_at(0.0, 0)
    for i in range(25):
        share.on_sent(0)
        share.on_accepted(i * 0.01)
    share.on_refused(0.3, retry_after=4.0)  # a window filled in a burst: 25 is this process's share
    assert share.share == 25
    share.ready_at(100.0, 0)  # past the first probe's time (22-67 s after the 429)
    for i in range(25):
        share.on_sent(0)
        share.on_accepted(100.0 + i * 0.1)
    share.ready_at(103.0, 0)  # the probe lets 4 more go by now (one, then doubling every 1.25 s)
    for i in range(4):
        share.on_sent(0)
        share.on_accepted(103.0 + i * 0.05)
    share.on_refused(103.5, retry_after=1.0)  # refused: a request within the share
    share.on_refused(104.2, retry_after=1.0)  # and another, after the probe
    assert share.share == 25  # 4 of 12.5 needed: no room found, and nothing taken by the back door


@pytest.mark.parametrize(("share_of_quota", "earliest"), [(50, 22.5), (25, 45.0)])
def test_with_more_processes_each_probes_less_often(share_of_quota, earliest):
    """A share of a quarter (4 processes): the first probe 22.5-67.5 s after the 429; of an eighth (8): 45-135 s,
    so that the account sees about as many probes (each a 429 or two to somebody) whatever their number."""
    for seed in range(1, 21):
        share = WindowShare(200, 5.0, rng=random.Random(seed))
        share.ready_at(0.0, 0)
        for i in range(share_of_quota):
            share.on_sent(0)
            share.on_accepted(i * 0.001)
        share.on_refused(0.1, retry_after=4.0)
        assert share.share == share_of_quota
        for tenth in range(2, int(earliest * 10)):
            share.ready_at(tenth / 10, 0)  # a probe that had begun would let more go by the next look
            assert share.allowance == share_of_quota, (seed, tenth / 10)


def test_a_process_with_almost_no_share_probes_sooner_however_many_its_share_suggests():
    """A share of 2 in 40 would suggest 20 processes (probe 5 times less often); a process that lost its share,
    or has almost none, probes four times sooner instead (a sim run had one at a share of 1 for 120 s)."""
    for seed in range(1, 21):
        share = WindowShare(40, 1.0, rng=random.Random(seed))
        share.ready_at(0.0, 0)
        for i in range(3):
            share.on_sent(0)
            share.on_accepted(i * 0.001)
        share.on_refused(0.1, retry_after=4.0)  # a window filled in a burst: 3 is its share
        assert share.share == 3
        share.on_refused(1.2, retry_after=1.0)  # twice, within its share: its turns are taken
        share.on_refused(2.3, retry_after=1.0)  # (more than a second later: not the same run of 429s)
        assert share.share is not None and share.share < 2.5  # starved: below a sixteenth of the quota
        share.ready_at(19.2, 0)  # 45 s / 4, randomised 0.5-1.5x: at most 16.9 s after that 429
        share.ready_at(19.7, 0)
        assert share.allowance > share.share, seed


def test_a_process_refused_once_a_window_past_its_share_gives_turns_back():
    """On a fixed window a process whose share is too large is refused once per window, at its end: two such 429s
    a window apart are its turns being taken, as two within one window are."""
    share = WindowShare(40, 1.0, rng=random.Random(1))
    share.ready_at(0.0, 0)
    for i in range(17):
        share.on_sent(0)
        share.on_accepted(i * 0.01)
    share.on_refused(0.2, retry_after=1.0)
    learnt = share.share
    assert learnt is not None
    for end in (1.95, 2.95):  # the ends of the next two fixed windows
        for i in range(int(learnt) - 1):
            share.on_sent(0)
            share.on_accepted(end - 0.9 + i * 0.01)
        share.on_refused(end, retry_after=1.0)
    assert share.share is not None and share.share < learnt


def test_where_a_fixed_window_ends_the_share_is_what_the_process_had_in_it():
    """A fixed window of 40 a second: 6 requests late in the window before, 10 early in this one, then 429s to its
    end. A count of the last second says 16; the window that ended held 10 of them, and that is the share."""
    share = WindowShare(40, 1.0, rng=random.Random(1))
    share.ready_at(-0.9, 0)
    for i in range(6):
        share.on_accepted(-0.3 + i * 0.05)  # the window before [-1, 0)
    for i in range(10):
        share.on_accepted(0.02 + i * 0.05)  # this one [0, 1)
    share.on_refused(0.55, retry_after=1.0)  # full: the start ends at the count of the last second
    assert share.share == 16
    for t in (0.65, 0.75, 0.85, 0.95):  # one request at a time, refused until the window ends
        share.on_refused(t, retry_after=1.0)
    share.on_accepted(1.04)
    assert share.share == 10


def test_a_short_run_of_429s_is_a_sliding_window_s_slot_and_measures_nothing_more():
    """A sliding window at its limit frees a slot as soon as a request leaves: 429s followed by an accepted request
    within a tenth of the window say nothing about where a window began."""
    share = WindowShare(200, 5.0, rng=random.Random(1))
    share.ready_at(0.0, 0)
    for i in range(30):
        share.on_accepted(i * 0.1)
    share.on_refused(3.0, retry_after=4.0)
    share.on_refused(3.2, retry_after=1.0)
    share.on_accepted(3.3)
    assert share.share == 30


@pytest.mark.parametrize(
    ("quota", "count", "share"),
    [(40, 9, 10), (40, 11, 10), (40, 17, 17), (40, 5, 5), (200, 185, 200), (200, 62, 200 / 3)],
)
def test_a_count_within_a_request_or_two_of_an_even_share_among_a_few_processes_is_that_share(quota, count, share):
    """Which of the window's last few requests arrived first makes one process's count 9 and another's 11 of 40:
    the one at 9 finishes last, 10 % late. Among 1 to 4 processes even shares are 25 % apart or more, so a count
    within an eighth of one is that one; 17 of 40 is no even share, and 5 of 40 would be among 8 (left as counted)."""
    window = WindowShare(quota, 5.0, rng=random.Random(1))
    window.ready_at(0.0, 0)
    for i in range(count):
        window.on_accepted(i * 0.001)
    window.on_refused(0.5, retry_after=4.0)  # a window filled in a burst
    assert window.share == pytest.approx(share)
