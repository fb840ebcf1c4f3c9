"""A discrete-event simulation of N processes, each with its own :class:`Pacer`, against one vendor quota.

Each process has ``concurrency`` threads; a request takes ``latency`` seconds; the vendor enforces one
account-wide quota, either a sliding window answering 429 + ``Retry-After`` (DX) or a fixed window
announcing its budget on every answer (AltaTech). Time is simulated: a minute of traffic runs in well
under a second, and the same seed gives the same run.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import random
from collections.abc import Sequence
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
    """``requests`` per window starting at multiples of ``window``; every answer carries the budget (AltaTech),
    or, with ``announces_budget=False``, beyond the budget a 429 with a whole-second ``Retry-After`` only."""

    def __init__(self, requests: int, window: float, *, announces_budget: bool = True) -> None:
        self.requests, self.window = requests, window
        self.announces_budget = announces_budget
        self.index, self.used = -1, 0

    def answer(self, t: float) -> tuple[int, float | None, Budget | None]:
        index = int(t // self.window)
        if index != self.index:
            self.index, self.used = index, 0
        reset = (index + 1) * self.window
        if self.used < self.requests:
            self.used += 1
            return 200, None, Budget(self.requests - self.used, reset, self.requests) if self.announces_budget else None
        if not self.announces_budget:
            return 429, float(math.ceil(reset - t)), None
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
    jitter: float = 0.25,
    seed: int = 1,
    work: int | Sequence[int] | None = None,
    starts: Sequence[float] | None = None,
    slots: int | None = None,
    restart: float = 1.0,
) -> SimResult:
    """``work``: requests each process has to get accepted (one number for all, or one per process), after which it
    stops (None: runs for ``duration``); with it, ``duration`` in the result is when the last process finished, as a
    sync's time taken is. ``starts``: when each process starts (default all within the first 10 ms). ``slots``:
    at most this many processes run at once, the next one starting ``restart`` seconds after one finishes (mapped
    tasks in a pool), in order."""
    clock = SimClock()
    quota = Quota(vendor.requests, vendor.window) if declare_quota else None
    pacers = [
        Pacer(clock=clock, quota=quota, announces_budget=vendor.announces_budget, rng=random.Random(seed + i))
        for i in range(processes)
    ]
    rng = random.Random(seed)
    offsets = list(starts) if starts is not None else [0.0] * processes
    # Events in time order: (time, order, kind, process, thread, status, retry_after, budget). A thread asks its
    # pacer for a turn ("try"); the request reaches the vendor half a latency later ("arrive", judged in arrival
    # order) and its answer comes back after the other half ("answer"), when the thread tries again (after the
    # vendor's wait, on a 429, as the retry loop does).
    order = itertools.count()
    first = processes if slots is None else min(slots, processes)
    waiting = list(range(first, processes))
    events: list[tuple[float, int, str, int, int, int, float | None, Budget | None]] = [
        (offsets[p] + rng.uniform(0, 0.01), next(order), "try", p, thread, 0, None, None)
        for p in range(first)
        for thread in range(concurrency)
    ]
    heapq.heapify(events)
    accepted = throttled = 0
    works = [work] * processes if work is None or isinstance(work, int) else list(work)
    left = [w if w is not None else -1 for w in works]
    finished = 0.0
    while events:
        t, _, kind, process, thread, status, retry_after, budget = heapq.heappop(events)
        if t > duration:
            break
        clock.now = t
        pacer = pacers[process]
        if kind == "try":
            if left[process] == 0:
                continue
            wait = pacer.reserve(defer=False)
            if wait > 0:
                heapq.heappush(events, (t + wait, next(order), "try", process, thread, 0, None, None))
                continue
            there = latency / 2 * rng.uniform(1 - jitter, 1 + jitter)
            heapq.heappush(events, (t + there, next(order), "arrive", process, thread, 0, None, None))
        elif kind == "arrive":
            status, retry_after, budget = vendor.answer(t)
            back = latency / 2 * rng.uniform(1 - jitter, 1 + jitter)
            heapq.heappush(events, (t + back, next(order), "answer", process, thread, status, retry_after, budget))
        else:
            pacer.on_answer(status, retry_after=retry_after, budget=budget)
            accepted += status == 200
            throttled += status == 429
            if status == 200 and left[process] > 0:
                left[process] -= 1
                if left[process] == 0:
                    finished = max(finished, t)
                    if waiting:  # the pool's slot goes to the next task
                        nxt, at = waiting.pop(0), t + restart
                        for th in range(concurrency):
                            heapq.heappush(
                                events, (at + rng.uniform(0, 0.01), next(order), "try", nxt, th, 0, None, None)
                            )
            wait = (retry_after or 0.0) if status == 429 else 0.0  # the retry loop honours the vendor's wait
            heapq.heappush(events, (t + wait, next(order), "try", process, thread, 0, None, None))
    # As the benchmark and the report count it: from the first process's start, not from time 0.
    taken = finished - min(offsets[:first]) if work is not None else duration
    return SimResult(accepted, throttled, taken, vendor.requests / vendor.window)
