"""A discrete-event simulation of N processes, each with its own :class:`Pacer`, against one vendor quota.

Each process has ``concurrency`` threads; a request takes ``latency`` seconds; the vendor enforces one
account-wide quota, either a sliding window answering 429 + ``Retry-After`` (DX) or a fixed window
announcing its budget on every answer (AltaTech). Time is simulated: a minute of traffic runs in well
under a second, and the same seed gives the same run.
"""

from __future__ import annotations

import collections
import heapq
import math
import random
from dataclasses import dataclass

from airflow_provider_userattrs.client.pacing import Budget, Pacer, Quota


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:  # pragma: no cover - the simulation never sleeps
        raise AssertionError("the simulation schedules waits instead of sleeping")


class SlidingWindowVendor:
    """At most ``requests`` in any ``window`` seconds; beyond, 429 with the wait until a slot frees."""

    announces_budget = False

    def __init__(self, requests: int, window: float) -> None:
        self.requests, self.window = requests, window
        self.accepted: collections.deque[float] = collections.deque()

    def answer(self, t: float) -> tuple[int, float | None, Budget | None]:
        while self.accepted and self.accepted[0] <= t - self.window:
            self.accepted.popleft()
        if len(self.accepted) < self.requests:
            self.accepted.append(t)
            return 200, None, None
        # Retry-After is whole seconds on the wire (the sandbox and real vendors round up).
        return 429, float(math.ceil(self.accepted[0] + self.window - t)), None


class FixedWindowVendor:
    """``requests`` per window starting at multiples of ``window``; every answer carries the budget."""

    announces_budget = True

    def __init__(self, requests: int, window: float) -> None:
        self.requests, self.window = requests, window
        self.index, self.used = -1, 0

    def answer(self, t: float) -> tuple[int, float | None, Budget | None]:
        index = int(t // self.window)
        if index != self.index:
            self.index, self.used = index, 0
        reset = (index + 1) * self.window
        if self.used < self.requests:
            self.used += 1
            return 200, None, Budget(self.requests - self.used, reset, self.requests)
        return 429, None, Budget(0, reset, self.requests)


@dataclass
class SimResult:
    accepted: int
    throttled: int
    duration: float
    quota_rate: float

    @property
    def quota_used(self) -> float:
        return self.accepted / (self.quota_rate * self.duration)

    @property
    def throttled_share(self) -> float:
        return self.throttled / max(1, self.accepted + self.throttled)


def simulate(
    vendor: SlidingWindowVendor | FixedWindowVendor,
    processes: int,
    *,
    declare_quota: bool,
    duration: float = 60.0,
    concurrency: int = 32,
    latency: float = 0.02,
    seed: int = 1,
    work: int | None = None,
) -> SimResult:
    """``work``: requests each process has to get accepted, after which it stops (None: runs for ``duration``);
    with it, ``duration`` in the result is when the last process finished, as a sync's time taken is."""
    clock = SimClock()
    quota = Quota(vendor.requests, vendor.window) if declare_quota else None
    pacers = [
        Pacer(clock=clock, quota=quota, announces_budget=vendor.announces_budget, rng=random.Random(seed + i))
        for i in range(processes)
    ]
    start = random.Random(seed)
    events = [(start.uniform(0, 0.01), p, thread) for p in range(processes) for thread in range(concurrency)]
    heapq.heapify(events)
    accepted = throttled = 0
    left = [work if work is not None else -1 for _ in range(processes)]
    finished = 0.0
    while events:
        t, process, thread = heapq.heappop(events)
        if t > duration or left[process] == 0:
            continue
        clock.now = t
        delay = pacers[process].reserve(defer=False)
        if delay > 0:
            heapq.heappush(events, (t + delay, process, thread))
            continue
        status, retry_after, budget = vendor.answer(t + latency / 2)
        clock.now = t + latency
        pacers[process].on_answer(status, retry_after=retry_after, budget=budget)
        accepted += status == 200
        throttled += status == 429
        if status == 200 and left[process] > 0:
            left[process] -= 1
            finished = max(finished, t + latency)
        heapq.heappush(events, (t + latency, process, thread))
    taken = finished if work is not None else duration
    return SimResult(accepted, throttled, taken, vendor.requests / vendor.window)
