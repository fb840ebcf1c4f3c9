"""When the next request may go: the vendor's quota, spent evenly, shared by every process that uses it.

Real vendors are quota-bound (DX 1,000 requests a minute per account, AltaTech plans down to 1,000 an
hour), and a sync runs as many mapped tasks on many workers at once, each with its own :class:`Pacer`.
No process knows how many others there are, so the pacer coordinates through what every process sees
alike, the vendor's own signals:

* **An announced budget** (AltaTech's ``X-RateLimit-Remaining``/``-Reset`` on every answer, account-wide):
  the remaining budget is spent evenly until the reset (in a task that may defer: within ``defer_after``,
  then the task waits for the reset in the triggerer), counting this process's requests in flight, and
  sending stops before it reaches zero. Every process paces at ``remaining / time to reset``; with N
  processes the remaining budget then falls N times faster and so does everybody's pace, so N processes
  spend one budget without overrunning it (the budget decays as ``(1 - t/T)^N``, reaching 0 at the reset).
  Before the first answer of a window, one probe request goes alone. In the first window a process sees, it knows
  nothing yet of the others: it does not start spending one with less than a second left (``LATE_SECONDS``), and
  leaves the window's last few requests (``FIRST_WINDOW_LEFT``) to them.
* **A declared quota with a short window** (``quota_requests`` per ``quota_window_seconds`` under
  :data:`SHARE_WINDOW_LIMIT`) with only 429 + ``Retry-After`` (DX, Fyno, User.com): the process learns its share
  of each window from the 429 that says the window is full, then keeps to it, probing past it only rarely
  (:mod:`.quota_share`). The first 429 in a row pauses ``Retry-After - 1`` (whole seconds rounded up), the next
  ones ``Retry-After``, except that ``Retry-After`` 1 pauses nothing: the process sends one request a tenth of a
  second until one is accepted, which is where a fixed window ends.
* **A declared quota with a long window** (DX's 1,000 a minute, declared by default), **or none**: the pace
  converges by AIMD, the declared quota its ceiling. A 429 cuts the pace once per
  reaction period to a share of what this process had accepted (multiplicative decrease); each second without
  a 429 adds a small step (additive increase), faster after a quiet window. Each 429 pauses the process for
  the vendor's wait.
* **A quota store** (``quota_store``, :mod:`.shared_quota`): one account-wide pace is the last gate before a
  request goes; the rules above only apply again if the store fails mid-sync.
* Every wait the vendor asks for (``Retry-After``, a spent budget) is stretched by a random 0-25 %, so
  that processes that were told the same instant do not come back in lockstep.

A wait longer than :attr:`Pacer.defer_after` is not slept: :meth:`Pacer.reserve` raises
:class:`LongWait` and the caller decides (an operator defers its task to the triggerer; a plain hook
sleeps). Without a quota, announced budget or 429, the pacer never waits: no pace is imposed on a vendor
that has not asked for one.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field

from airflow_provider_userattrs.client.clock import Clock, SystemClock
from airflow_provider_userattrs.client.quota_share import WindowShare
from airflow_provider_userattrs.client.shared_quota import SharedQuota

log = logging.getLogger(__name__)

WAIT_JITTER = 0.25
"""Vendor-asked waits are stretched by up to this share, drawn per process."""
QUIET_BOOST = 50.0
"""How much faster the pace grows after one quiet quota window (quadratic in quiet windows). Without it, a
process cut down early straggled at its old share after the others finished: 8 tasks sharing 800 requests per
10 s took 136 s instead of 30 s in the simulation (22 % of the quota used); with it, 97 % and 0.7 % 429s."""
PROBE_POLL = 0.05
LATE_SECONDS = 1.0
"""A process whose first window of an announced budget has less than this left (seconds), and that has had fewer
than ``LATE_ANSWERS`` answers in it, waits for the reset instead of spending what is left. Spending evenly until
the reset works because the answers tell every process what the others spent; with a tenth of a second left,
every process read the whole remainder as its own and sent it before an answer came back (the simulation, 8
processes started together at a random point of a fixed 5-s window of 200, 64 seeds: 4 runs drew 408 429s between
them, one 185; none now). What it costs: a lone process that starts in a window's last second leaves that
window's remainder (the simulation's mean share of the quota used over a 30-s sync: 107 -> 104 %)."""
LATE_ANSWERS = 8
FIRST_WINDOW_LEFT = 8
"""In the first window a process sees, it leaves at least this many of the last requests (an eighth of the window's
budget at most) to the others. It counts the others from its share of the account's requests in the window
(``_others_last_moment``), and a task started a quarter second before the others has most of them: it counted 2
others of 3 and took the last request with them (the simulation, 4 and 8 processes, the first started 0.25 s
before the others at a random point of a fixed 5-s window of 200, 64 seeds each: 6 and 22 runs with a 429; 0 and
0 now). From the next window on, every process starts it together and the count holds. A task that defers
resumes with a new pacer, so each window after a deferral is a first window: 8 of each window's budget unspent
(0.8 % of an hourly plan of 1,000; the quota benchmark's deferring sync of 400 on 100 per 30 s took 5 windows
instead of 4)."""
SHARE_WINDOW_LIMIT = 30.0
"""A declared quota whose window is shorter than this (seconds) is kept as a share per window
(:mod:`.quota_share`); a longer one is paced by AIMD. Each 429 is a reaction of at least a second: against a
window of a few seconds that is a large part of it, and AIMD overshoots where counting a share is exact;
against a window of a minute, AIMD's cut-and-climb is fine-grained and follows tasks that come and go at once,
where a share would wait for a probe to find what a finished task left. Measured in the simulation
(``tests/client/quota_sim.py``, 4 seeds, 4 tasks at once / 12 tasks through a pool of 4), share against AIMD:
200 per 5 s 90-99 % and 0.3 % 429s against 87-89 % and 1.7 %; 400 per 10 s 88-98 % / 0.3-0.7 % against
92-93 % / 0.8-1.4 %; 500 per 30 s in a pool 84-88 % / 0.8-1.2 % against 98-100 % / 0.7-0.8 %; DX's 1,000 per 60 s
in a pool 87-98 % / 0.5-0.9 % against 104-107 % / 0.3 %."""
"""How often a request waiting for the probe of a new budget window looks again (seconds)."""


class LongWait(Exception):
    """The next request may only go after a wait longer than ``defer_after``: ``until`` (wall-clock time)."""

    def __init__(self, until: float, seconds: float, reason: str) -> None:
        super().__init__(f"{reason}: next request in {seconds:.0f} s")
        self.until = until
        self.seconds = seconds
        self.reason = reason


@dataclass(frozen=True)
class Quota:
    """An account's quota as declared on the connection: ``requests`` per ``window_seconds``."""

    requests: int
    window_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.window_seconds


@dataclass(frozen=True)
class Budget:
    """What the vendor announced in an answer: ``remaining`` requests until ``reset_at`` (monotonic time)."""

    remaining: int
    reset_at: float
    limit: int | None = None


@dataclass
class PacerStats:
    """What pacing cost, for the report."""

    throttled: int = 0
    """Answers that were 429."""
    waited_seconds: float = 0.0
    """Time requests spent waiting for their turn (summed over threads)."""


@dataclass
class Pacer:
    """Pacing shared by every thread of one hook (one process's share of the account's quota)."""

    clock: Clock = field(default_factory=SystemClock)
    requests_per_second: float | None = None
    """A fixed client-side cap (off by default: plan limits differ from customer to customer)."""
    quota: Quota | None = None
    announces_budget: bool = False
    """The vendor sends rate-limit headers on every answer (AltaTech): probe a window before spending it."""
    defer_after: float | None = None
    """Waits longer than this raise :class:`LongWait` instead of sleeping (None: always sleep)."""
    shared: SharedQuota | None = None
    """An account-wide pace kept in a store (:mod:`.shared_quota`): the last gate before a request goes."""
    rng: random.Random = field(default_factory=random.Random)
    min_rate: float = 0.05
    decrease: float = 0.9
    """Pace after a 429, as a share of what this process had accepted in the last reaction period."""
    increase_share: float = 0.005
    """Additive increase per second, as a share of the declared quota's rate."""
    undeclared_increase: float = 1.0
    """Additive increase per second (requests/s) where no quota is declared."""

    stats: PacerStats = field(default_factory=PacerStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _next_slot: float = field(default=0.0, init=False)
    _paused_until: float = field(default=0.0, init=False)
    _rate: float | None = field(default=None, init=False)
    _last_increase: float | None = field(default=None, init=False)
    _last_cut: float = field(default=float("-inf"), init=False)
    _accepted: deque[float] = field(default_factory=lambda: deque(maxlen=100_000), init=False, repr=False)
    _in_flight: int = field(default=0, init=False)
    _budget: Budget | None = field(default=None, init=False)
    _windows_seen: int = field(default=0, init=False)
    """Windows of an announced budget this process has seen (the first: it knows nothing of the others yet)."""
    _probing: bool = field(default=False, init=False)
    _window_answers: int = field(default=0, init=False)
    """Answers of this process in the current budget window after the first one."""
    _window_started: float = field(default=0.0, init=False)
    """When this process first heard of the current budget window (monotonic)."""
    _window_first_remaining: int = field(default=0, init=False)
    _window_last_remaining: int = field(default=0, init=False)
    _share: WindowShare | None = field(default=None, init=False)
    _slots: list[float] = field(default_factory=list, init=False, repr=False)
    """Slots reserved in the quota store and not used yet (monotonic, a heap)."""

    def __post_init__(self) -> None:
        if self.quota is not None:
            self._rate = self.quota.rate
            if not self.announces_budget:
                self._share = self._window_share()

    # -- what callers see -----------------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """The pace in force now (requests/s), or None when nothing limits it."""
        own = self._rate
        if self._share is not None and self.shared is None:
            own = self._share.pace(self.clock.monotonic())
        rates = [r for r in (self.requests_per_second, own) if r]
        return min(rates) if rates else None

    @property
    def share(self) -> float | None:
        """This process's share of the declared quota, requests per window, once a 429 has shown it."""
        return self._share.share if self._share is not None else None

    @property
    def budget(self) -> Budget | None:
        return self._budget

    def acquire(self) -> None:
        """Block until this thread may send its next request (waits of any length are slept)."""
        while (delay := self.reserve(defer=False)) > 0:
            self.clock.sleep(delay)

    def reserve(self, *, defer: bool = True) -> float:
        """0 when a request may go now (it is then counted in flight), else seconds to wait before asking again.

        :raises LongWait: when ``defer`` and the wait is longer than :attr:`defer_after`.
        """
        with self._lock:
            now = self.clock.monotonic()
            ready, reason = self._ready_at(now, defer)
            if ready <= now and self.shared is not None:
                slot = self._store_slot(now)
                if slot > now:
                    ready, reason = slot, "the account's next slot in the quota store"
            if ready <= now:
                # The first request of a budget window goes alone: the others wait for the budget it brings back.
                self._probing = self.announces_budget and self._budget is None
                if self._share is not None:
                    self._share.on_sent(self._in_flight)
                self._in_flight += 1
                rate = self.rate
                self._next_slot = max(now, self._next_slot) + (1.0 / rate if rate else 0.0)
                return 0.0
            delay = ready - now
            if defer and self.defer_after is not None and delay > self.defer_after:
                raise LongWait(self.clock.time() + delay, delay, reason)
            self.stats.waited_seconds += delay
            return delay

    def on_answer(self, status: int, *, retry_after: float | None = None, budget: Budget | None = None) -> None:
        """An answer came back (any status): release its slot, learn from it."""
        with self._lock:
            now = self.clock.monotonic()
            self._release()
            if budget is not None:
                self._learn_budget(budget)
            elif self._probing:
                # This vendor (or what stands in for it) announces no budget after all: pace as one that doesn't.
                self._probing = False
                self.announces_budget = False
                if self._share is None:
                    self._share = self._window_share()
            if status == 429:
                self._throttled(now, retry_after)
            else:
                self._accepted.append(now)
                if self._share is not None:
                    self._share.on_accepted(now)
                else:
                    self._grow(now)

    def on_no_answer(self) -> None:
        """The request got no answer (connection error, timeout): release its slot."""
        with self._lock:
            self._release()

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (stretched by the jitter): the vendor asked for it."""
        with self._lock:
            self._pause(self.clock.monotonic(), seconds)

    # -- rules ----------------------------------------------------------------------------------------

    def _ready_at(self, now: float, defer: bool = False) -> tuple[float, str]:
        ready, reason = max(now, self._paused_until, self._next_slot), "the vendor asked to wait"
        budget = self._budget
        if budget is not None and now >= budget.reset_at:
            self._budget = budget = None
            self._probing = False
        if budget is None:
            if self.announces_budget and (self._probing or self._in_flight):
                return max(ready, now + PROBE_POLL), "waiting for the vendor's budget"
            if self._share is not None and self.shared is None:
                # A declared quota: this process's share of each window (:mod:`.quota_share`).
                window_ready, interval = self._share.ready_at(now, self._in_flight)
                self._rate = 1.0 / interval
                if window_ready > ready:
                    ready, reason = window_ready, "this process's share of the declared quota is used"
            return ready, reason
        spendable = budget.remaining - self._in_flight - self._others_last_moment()
        if self._first_window and self._window_answers < LATE_ANSWERS and budget.reset_at - now < LATE_SECONDS:
            spendable = 0  # a window about to end, the others not yet known: its remainder is not this process's
        if spendable <= 0:
            until = budget.reset_at + self._jitter(budget.reset_at - now)
            return max(ready, until), "the vendor's rate-limit budget is spent until its reset"
        # Spend what is left evenly until the reset: every process reads the same account-wide remainder. A task
        # that may defer spends it within defer_after instead, then waits for the reset in the triggerer: an
        # hourly plan then holds a worker slot about a minute an hour, not the whole hour.
        deadline = budget.reset_at
        if defer and self.defer_after is not None:
            deadline = min(deadline, self._window_started + self.defer_after)
        interval = max(0.0, deadline - now) / (spendable + 1)
        return max(ready, self._last_send_slot() + interval), reason

    @property
    def _first_window(self) -> bool:
        """The first window of an announced budget this process sees: it knows nothing of the others yet."""
        return self._windows_seen <= 1

    def _others_last_moment(self) -> int:
        """Requests to leave for the other processes at the end of a window.

        Every process sees the same last few requests of the budget; if each spent them, all but one would
        draw a 429. This process's share of what the account spent since its first answer of the window
        tells how many others there are (``spent / ours``); it leaves one request for each of them, a small
        loss for a large budget (7 of 100 with 8 processes) that saves a 429 per process per window.
        """
        first = min(FIRST_WINDOW_LEFT, self._window_first_remaining // 8) if self._first_window else 0
        if not self._window_answers:
            return first
        spent = max(0, self._window_first_remaining - self._window_last_remaining)
        return max(first, math.ceil(spent / self._window_answers) - 1)

    def _window_share(self) -> WindowShare | None:
        """The declared quota kept as a share per window (:mod:`.quota_share`), for a window shorter than
        :data:`SHARE_WINDOW_LIMIT`; None (AIMD) for a longer one."""
        if self.quota is None or self.quota.window_seconds >= SHARE_WINDOW_LIMIT:
            return None
        return WindowShare(self.quota.requests, self.quota.window_seconds, rng=self.rng)

    def _store_slot(self, now: float) -> float:
        """When this request may go by the store: a slot this process reserved that is due, else a new one."""
        assert self.shared is not None
        if self._slots and self._slots[0] <= now:
            heapq.heappop(self._slots)  # reserved by a thread that came back later, or not at all
            return now
        try:
            wait = self.shared.take()
        except Exception as exc:  # an optional store must not fail a sync: fall back to the vendor's signals
            log.warning("quota_store failed (%s): pacing from the vendor's answers only", type(exc).__name__)
            self.shared = None
            return now
        if wait <= 0:
            return now
        heapq.heappush(self._slots, now + wait)  # the thread comes back for it (or another one takes it)
        return now + wait

    def _last_send_slot(self) -> float:
        rate = self.rate
        return self._next_slot - (1.0 / rate if rate else 0.0)

    def _learn_budget(self, budget: Budget) -> None:
        self._probing = False
        current = self._budget
        if current is None or budget.reset_at > current.reset_at + 0.5:
            self._budget = budget  # a new window
            self._windows_seen += 1
            self._window_started = self.clock.monotonic()
            self._window_answers = 0
            self._window_first_remaining = self._window_last_remaining = budget.remaining
            return
        self._window_answers += 1
        self._window_last_remaining = min(self._window_last_remaining, budget.remaining)
        # The same window: answers arrive out of order across threads; the lowest count is the latest.
        self._budget = Budget(min(current.remaining, budget.remaining), current.reset_at, budget.limit)

    def _throttled(self, now: float, retry_after: float | None) -> None:
        self.stats.throttled += 1
        if self._share is not None and self.shared is None:
            self._share.on_refused(now, retry_after)
            if retry_after:
                self._pause(now, self._share.pause_for(retry_after))
            return
        reaction = max(1.0, retry_after or 0.0)
        if now - self._last_cut >= reaction:
            self._last_cut = now
            accepted = self._accepted_rate(now)
            current = self.rate or accepted or 1.0
            target = min(current, accepted) if accepted else current
            self._rate = max(self.min_rate, target * self.decrease)
            self._last_increase = now
        if retry_after:
            self._pause(now, retry_after)

    def _accepted_rate(self, now: float) -> float:
        """What the vendor accepted from this process per second, over the quota's window (else 1 s)."""
        span = self.quota.window_seconds if self.quota is not None else 1.0
        started = self._accepted[0] if self._accepted else now
        span = min(span, max(1.0, now - started))
        return sum(1 for t in self._accepted if t >= now - span) / span

    def _grow(self, now: float) -> None:
        if self._rate is None:
            return
        last = self._last_increase if self._last_increase is not None else now
        self._last_increase = now
        elapsed = max(0.0, now - last)
        if self.quota is not None:
            # Grow by a share of what this process already gets: the account's total then climbs at the same
            # pace whatever the number of processes, which bounds the 429s each climb past the quota costs.
            # The longer no 429 came, the faster it grows: a quiet window means capacity is free (another task
            # finished), and a process cut down earlier must not straggle at its old share.
            quiet = max(0.0, now - self._last_cut) if self._last_cut > float("-inf") else 0.0
            boost = 1.0 + (quiet / self.quota.window_seconds) ** 2 * QUIET_BOOST
            base = max(self._rate, self.quota.rate * 0.01)
            self._rate = min(self.quota.rate, self._rate + base * self.increase_share * boost * elapsed)
        else:
            self._rate += self.undeclared_increase * elapsed
            if self._rate > 10_000:
                self._rate = None

    def _pause(self, now: float, seconds: float) -> None:
        self._paused_until = max(self._paused_until, now + seconds + self._jitter(seconds))

    def _jitter(self, seconds: float) -> float:
        return self.rng.uniform(0.0, WAIT_JITTER * max(seconds, 0.0))

    def _release(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)
