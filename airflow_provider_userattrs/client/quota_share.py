"""One process's share of a declared quota, learnt from the vendor's 429s and then kept, not probed past.

A vendor that answers only ``429`` + ``Retry-After`` (DX, Fyno, User.com) tells a process nothing until its
quota is spent, and N processes that do not know each other share it. Pacing a *rate* by AIMD, as
:class:`~.pacing.Pacer` does without a declared quota, probes past a short window's quota again and again:
1.5-3 % of the requests answered 429 and 15 % of the quota unused with 4 to 8 processes on 200 per 5 s
(issue 24). With the quota declared (``requests`` per ``window``), a process can instead keep what it got. The
pacer does so for windows shorter than :data:`~.pacing.SHARE_WINDOW_LIMIT` (where AIMD does better, see there):

* **Its share is a count per window.** When a 429 says the account's window is full, what this process has in
  that window (accepted: what it has in flight went into the same full window) is its share of it, measured
  rather than guessed. From then on it never has more than that in any window: a request goes when one of its
  own leaves the window. Every process doing so, the shares add up to the quota and nobody draws a 429 any more,
  whatever their number. The count is of the last ``window`` seconds, which bounds a fixed window too.
* **A process younger than the window** that is refused with a slot free within the second (``Retry-After``
  1) came into a window already full of steady traffic, not into a burst: what it got is its pace over part of a
  window, so its share is that pace over a whole window (tasks one window apart on 100 per 5 s: 27 % of the
  quota used with one seed, 76 % with this rule; 12 tasks through a pool of 4 on 200 per 5 s: 84-91 % before,
  90-96 % with it).
* **A new process starts below its share**: at a quarter of the quota, doubling every quarter window but no faster
  than every 2 s (nor slower than once a window), until its first 429. Processes starting together then get even
  shares (their allowance, not the race for the window's last slots, decides what each has when it fills), and a
  lone one the whole quota. A 429 before it has a sixteenth of the quota does not end its start: the window is full
  of another process's requests about to leave (it just finished), not of shares.
* **It probes rarely, and gives back what a probe took.** Another process finishing leaves its share unused
  until someone asks for more: about every 45 s (randomised, so processes do not probe together, and never more
  often than once per 500 of the account's requests), a process sends past its share, one request, then
  doubling every quarter window (at least every second). Accepted requests at a full window are usually taken from
  another process's next turn (the slot it was about to reuse), so a probe counts as finding room only if half
  its share more was accepted (at least ``PROBE_FOUND``); one that did not keeps the old share and leaves the
  taken slots to their owner. Any 429 while a probe is on is the probe's answer, even to a request within the
  share: the probe's own requests crowded it out. With more than ``PROBE_PEERS`` processes (the quota over this
  one's share says how many), each probes that much less often, so the account sees about as many probes, each a
  429 or two to somebody, whatever their number.
* **A process that lost share, or has almost none, probes four times sooner** (one with almost none as soon as
  a long ``Retry-After`` is over); one whose turns keep being taken (two 429s within ``TAKEN_SPAN`` windows while
  within its share) lets the other have them, and 5 % more.
* **Where a fixed window ends, the share is measured again.** A count of the last ``window`` seconds reaches into
  a fixed window's predecessor: four processes starting at another point of the vendor's second than its start
  counted 13-18 each of 40 and drew 429s until the taken rule brought them down, unevenly. A fixed window refuses
  everything until it ends and a sliding one frees a slot as soon as a request leaves, so a run of 429s lasting
  ``FIXED_RUN`` of a window or more and then an accepted request is a fixed window's end: the share a 429 of that
  run set from a count becomes what this process had accepted in the window that ended (which began a window
  before the end, taken half-way between the last 429 and the accepted request). Such a run is one event, not
  one per ``REACT``; while it lasts the process sends one request per ``RUN_GAP`` of a window (of a second at most).
* **A count within an eighth of an even share among up to four processes is that share** (``EVEN_PEERS``): which
  of a window's last requests arrived first makes one process's count 9 and another's 11 of 40, and the one at 9
  finishes 10 % after the others. Even shares among 1 to 4 processes are 25 % apart or more, so such a count
  names one; 17 of 40 is left as counted, and so is any count among more processes (25 and 22 of 200 are 8 and 9).
* ``Retry-After`` is read as what it measures: whole seconds rounded up, so the wait is over in ``R - 1`` to
  ``R`` seconds. The first 429 in a row pauses this process ``R - 1`` (a sliding window at its limit frees a
  slot within the second: ``R`` is 1 and the pause none), the next ones ``R`` (a fixed window's end), except
  ``R`` 1: a fixed window of a second ends within it, and a process held a whole second after two 429s missed most
  of the next window; it sends one request at a time instead (above) and finds the end.

Measured in the simulation of ``tests/client/quota_sim.py`` (separate pacers, 32 threads each, 20 ms latency,
started within 0.1 s, 32 seeds; "used" is accepted requests over the declared rate times the time taken), min-max
(mean) of the share used / the most 429s, before the fixed-window rules above -> with them: a sliding window of 200
per 5 s with whole-second ``Retry-After``, 2,400 requests, 4 processes: 94-101 % (98 %) / 0.46 % -> 95-101 % (99 %) /
0.95 %; 8 processes: 92-101 % (96 %) / 0.54 %, unchanged (AIMD on a rate: 84-92 %, 1.6-3.5 %); a fixed window of 40
per second, 4 processes started at its start: 78-99 % (92 %) / 0.91 % -> 95-99 % (98 %) / 1.32 %; started anywhere
in the vendor's second: 70-99 % (86 %) / 3.5 % -> 69-99 % (97 %) / 2.3 % (AIMD: 72-80 %, 5.0-6.1 %).

What it gives up: processes that learnt unequal shares keep them until a probe, so with equal work the one with
the least finishes last, and a share a finished process leaves waits for another's probe. The start decides: a
process that starts earlier has ramped further when the window fills. The simulation, 8 processes, 16 seeds: starts
spread over 0.3 s instead of 0.1 s, 90 % used on average instead of 96 %; over 1, 2 or 5 s, 69, 58, 64 % (AIMD on a
rate: 88 %, with 12 % of requests refused); 4 real tasks started a second apart: 38-56 %. That cost is paid once,
at the start: over ten minutes instead of one, 8 processes started within a second use 91 % (8 seeds). On a fixed
window, two processes that are refused at the end of the first full window keep a quarter each while the two that
were not go on doubling through the next window, take most of it and keep it (one seed in 32 above, 69 %; 4 of 39
runs of the quota benchmark's case on separate processes, 61-85 %, the other 35 97-101 %). Evening shares out
afterwards costs a 429 per slot moved (a process gains one only by taking it from another), which a budget of 1 %
of requests refused makes a matter of many minutes. A quota store (:mod:`.shared_quota`) has none of these costs:
98 % in every case above.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

START_SHARE = 0.25
"""A new process starts at this share of the quota per window..."""
START_DOUBLING = 0.25
"""...doubling every this many windows (at least every 15 s, at most every ``START_DOUBLING_MIN``) until its first
429."""
START_DOUBLING_MIN = 2.0
"""Seconds (but no more than the window): a start that doubles faster overtakes the answers it would learn its share
from, and processes starting together then learn unequal shares (the simulation, a fixed window of 40 a second, 4
processes started within 0.1 s, 32 seeds: doubling every 0.25 s, 78-99 % used, mean 87 %; every second, 78-99 %,
mean 93 %). Tasks forked together start tenths of a second apart, and the one ahead has ramped further when the
window fills: the quota benchmark's 8 tasks on 200 per sliding 5 s, the first forked 0.2-0.3 s before the others,
learnt up to 28 against 23-26 with a start doubling every 1.25 s (traces of six runs), and the one left at 23
finished last (about one run in three at 92 %, the others 96.7 %). Doubling every 2 s, the simulation (16 seeds,
lowest / mean share of the quota used): that shape 91.5 / 94.1 % -> 95.8 / 96.0 %; 8 processes started within 0.3 s
83.9 / 89.0 % -> 88.1 / 90.2 %; 4 within a second 64.4 / 80.2 % -> 65.5 / 86.6 %. A lone process reaches the whole
quota a second later (99.3 -> 98.2 % of a one-minute run). On a window of a second it doubles once a window (every 2
s there, 4 processes starting anywhere in it: lowest 69.4 -> 61.0 %)."""
PROBE_DOUBLING = 0.25
"""A probe doubles what it sends past the share every this many windows (at least every second)."""
CATCH_UP = 1.25
"""A process may go this much faster than its share per second, to catch up after a wait (its count per
window is still its share)."""
PROBE_SECONDS = 45.0
"""A process probes past its share about this often (uniformly 0.5x-1.5x)..."""
PROBE_MIN_REQUESTS = 500
"""...and never more often than once per this many requests of the whole quota (slow quotas: an hourly one)."""
PROBE_FOUND = 4
"""Requests past its share a probe must have had accepted to count as finding room..."""
PROBE_FOUND_SHARE = 0.5
"""...or this share of its share, if more."""
LOST = 0.8
"""A process left with less than this share of its count lost it to another: it probes four times sooner."""
START_MIN = 1 / 16
"""A 429 before a new process has this share of the quota does not end its start."""
STARVED = 1 / 16
"""A process with less than this share of the quota probes four times sooner."""
SOONER = 4.0
PROBE_PEERS = 4.0
"""With more processes than this sharing the quota (as their shares say), each probes that much less often, so that
the account sees about as many probes whatever their number."""
TAKEN_LIMIT = 2
"""429s within ``TAKEN_SPAN`` windows, while within its share, after which a process lets the others have those
turns..."""
TAKEN_SPAN = 2.5
"""...(more than one window: on a fixed window a process over its share is refused once per window, at its end)."""
YIELD = 0.05
"""...and this share more."""
REACT = 0.1
"""429s within this share of a window of one another are one event (requests already in flight)."""
FIXED_RUN = 0.1
"""A run of 429s (no request accepted between them) spanning this share of a window or more, then an accepted one:
a fixed window's end (a sliding window at its limit frees a slot as soon as one of its requests leaves)."""
RUN_GAP = 0.1
"""While a run of 429s lasts, this process sends at most one request per this share of a window (of a second, for
a longer one): enough to see where a fixed window ends, few 429s (the simulation's fixed window of 40 a second, 4
processes started anywhere in it, 64 seeds: 0.1 used 97 % of the quota on average with 1.0 % of requests refused;
0.2, 95 % and 0.8 %; with no gap, over 32 seeds, 97 % and 1.6 %)."""
EVEN_PEERS = 4
"""A share found to be within ``EVEN_WITHIN`` of an even share of the quota among at most this many processes is
taken to be that even share..."""
EVEN_WITHIN = 0.125
"""...(even shares among 1 to 4 processes are at least 25 % apart, so a count within an eighth of one names it)."""
IN_FLIGHT_POLL = 0.05
"""How often a request waiting for this process's requests in flight to answer looks again (seconds)."""


@dataclass
class WindowShare:
    """This process's share of a declared quota of ``requests`` per ``window`` seconds (not thread-safe: the
    :class:`~.pacing.Pacer` holds its lock around every call)."""

    requests: int
    window: float
    rng: random.Random = field(default_factory=random.Random)

    allowance: float = field(default=0.0, init=False)
    """Requests this process may have in the current window."""
    refused_in_a_row: int = field(default=0, init=False)
    _base: float | None = field(default=None, init=False)
    """The share learnt from the last 429 (None: still starting)."""
    _started: float | None = field(default=None, init=False)
    _probe_since: float | None = field(default=None, init=False)
    _refused_at: float = field(default=-math.inf, init=False)
    _hold: float | None = field(default=None, init=False)
    _sooner: bool = field(default=False, init=False)
    _probes_in_flight: int = field(default=0, init=False)
    _gained: int = field(default=0, init=False)
    _accepted: deque[float] = field(default_factory=deque, init=False, repr=False)
    _history: deque[float] = field(default_factory=deque, init=False, repr=False)
    """Accepted over the last two windows: what a window that has just ended held."""
    _run: tuple[float, float] | None = field(default=None, init=False)
    """The first and the last 429 since the last accepted request (None: the last answer was accepted)."""
    _measured: bool = field(default=False, init=False)
    """The current run of 429s set the share from a count: measure it again where the run ends."""
    _taken: deque[float] = field(default_factory=deque, init=False, repr=False)

    @property
    def share(self) -> float | None:
        """Requests per window this process found to be its share (None before its first 429)."""
        return self._base

    def pace(self, now: float) -> float:
        """Requests per second this process may go at now (faster than its share by ``CATCH_UP``)."""
        return self._allowance(now) * CATCH_UP / self.window

    def ready_at(self, now: float, in_flight: int) -> tuple[float, float]:
        """When this process's share lets its next request go, and the least interval between two."""
        self._prune(now)
        allowance = self.allowance = self._allowance(now)
        used = len(self._accepted) + in_flight
        excess = used - max(1, math.floor(allowance)) + 1
        ready = now
        if excess > len(self._accepted):
            ready = now + IN_FLIGHT_POLL  # its requests in flight fill the share: wait for their answers
        elif excess > 0:
            # When enough of its own requests leave the window, or its share grows (it starts or probes) first.
            ready = min(self._accepted[excess - 1] + self.window, self._grows_to(used + 1, now))
        if self._run is not None:  # one request at a time until the run ends
            ready = max(ready, self._run[1] + RUN_GAP * self._run_span())
        return ready, self.window / (allowance * CATCH_UP)

    def on_sent(self, in_flight: int) -> None:
        """A request goes (``in_flight`` before it): past the share, it is a probe."""
        if self._base is not None and len(self._accepted) + in_flight >= self._base:
            self._probes_in_flight += 1

    def on_accepted(self, now: float) -> None:
        run, self._run = self._run, None
        if run is not None and self._measured and run[1] - run[0] >= FIXED_RUN * self.window:
            self._base = self._window_ended(run[1], now)
        self._accepted.append(now)
        self._history.append(now)
        while self._history[0] <= now - 2 * self.window:
            self._history.popleft()
        self.refused_in_a_row = 0
        if self._probes_in_flight:
            self._probes_in_flight -= 1
            self._gained += 1

    def on_refused(self, now: float, retry_after: float | None = None) -> None:
        """A 429: the account's window is full. ``retry_after``: the vendor's wait, if it said one.

        What this process has in the window is what it had accepted: its requests still in flight were sent into
        the same full window and are refused too (counted, at 100 ms a request, 8 processes took 26-28 each of
        200 and drew 429s until the taken rule cut some to 21: over 16 seeds, 73-87 % of the quota used and 2.1 %
        of requests refused on average, against 88-93 % and 1.1 % now)."""
        self.refused_in_a_row += 1
        if self._probes_in_flight:
            self._probes_in_flight -= 1
        # While a probe is on, any 429 is its answer: a request within the share refused then was crowded out by
        # the probe's own ones, not taken by another process.
        probe = self._probe_since is not None
        if self._run is not None and now - self._run[0] < self._run_span():
            # The same run of 429s, one event: a fixed window refuses everything until it ends (one longer than a
            # second says when, in Retry-After, and this process waits for it).
            self._run = (self._run[0], now)
            return
        self._run, self._measured = (now, now), False
        if now - self._refused_at < REACT * self.window:
            return
        self._prune(now)
        count = measured = float(len(self._accepted))
        if self._base is None:  # the end of the start: what this process got is its share
            if count < START_MIN * self.requests:
                self._refused_at = now
                return  # a window full for a moment (another process's requests about to leave): not yet
            elapsed = now - (self._started if self._started is not None else now)
            if retry_after is not None and retry_after <= 1.0 and elapsed < self.window:
                # A slot frees within the second: the window was full of steady traffic before this process came
                # (a burst into an empty window frees nothing for longer). What it got since is its pace, not yet
                # a window's worth: its share is that pace over a whole window.
                count = max(count, min(self.allowance, count * self.window / max(elapsed, 1.0)))
            self._measured = count == measured  # not a young process's pace over a whole window
            self._base = self._even(count)
        elif probe and self._gained < max(PROBE_FOUND, self._base * PROBE_FOUND_SHARE):
            pass  # no room: keep the share, leave the turns it took to their owner
        elif probe:  # it found room, now taken
            self._base, self._measured = count, True
        else:  # another process took this one's turns
            self._taken.append(now)
            if len(self._taken) < TAKEN_LIMIT:
                return
            self._sooner = self._sooner or count < LOST * self._base
            self._base = count * (1 - YIELD)
            self._taken.clear()
            self._measured = True
        self._base = max(1.0, self._base)
        self._hold = None
        if retry_after is not None and retry_after >= 2 and self._base < STARVED * self.requests:
            # The window is full of requests that start leaving only then (another process's, finished): a
            # process with almost no share asks for more as soon as they do, not a probe period later.
            self._hold = retry_after
        self._probe_since = None
        self._refused_at = now

    def pause_for(self, retry_after: float) -> float:
        """How long to hold every request after this 429's ``Retry-After`` (before the jitter)."""
        if retry_after <= 1.0 or self.refused_in_a_row <= 1:
            return max(0.0, retry_after - 1.0)
        return retry_after

    # -- rules ----------------------------------------------------------------------------------------

    def _allowance(self, now: float) -> float:
        if self._started is None:
            self._started = now
        if self._base is None:
            doubling = self._start_doubling()
            allowance = self.requests * START_SHARE * 2 ** ((now - self._started) / doubling)
        else:
            if self._probe_since is None and now - self._refused_at >= self._probe_after():
                self._probe_since, self._gained, self._sooner = now, 0, False
            allowance = self._base
            if self._probe_since is not None:  # one request past the share, then doubling
                allowance += 2 ** ((now - self._probe_since) / self._probe_doubling()) - 1
        return max(1.0, min(float(self.requests), allowance))

    def _grows_to(self, count: int, now: float) -> float:
        """The earliest time this process may have ``count`` requests in a window without one leaving."""
        if count > self.requests:
            return math.inf
        if self._base is None:
            doubling = self._start_doubling()
            assert self._started is not None
            return max(now, self._started + doubling * math.log2(count / (self.requests * START_SHARE)))
        probe_at = self._probe_since
        if probe_at is None:
            probe_at = self._refused_at + self._probe_after()
        return max(now, probe_at + self._probe_doubling() * math.log2(max(1.0, count + 1 - self._base)))

    def _window_ended(self, last_refused: float, accepted: float) -> float:
        """This process's share of a fixed window that has just ended: what it had accepted in it. The window ended
        between the run's last 429 and the first request accepted after it (taken half-way), and began a window
        before; every request it accepted came before the run's first 429, so before ``last_refused``."""
        start = (last_refused + accepted) / 2 - self.window
        return self._even(float(max(1, sum(1 for t in self._history if start < t <= last_refused))))

    def _even(self, share: float) -> float:
        """``share``, or the even share of the quota among up to ``EVEN_PEERS`` processes if it is within an eighth of
        it."""
        peers = round(self.requests / max(share, 1.0))
        even = self.requests / max(peers, 1)
        return even if 1 <= peers <= EVEN_PEERS and abs(share - even) <= EVEN_WITHIN * even else share

    def _run_span(self) -> float:
        """Seconds a run of 429s lasts at most as one event, and in which it sends one request per ``RUN_GAP``: the
        window, or a second for a longer one (whose ``Retry-After`` says when it ends)."""
        return min(self.window, 1.0)

    def _start_doubling(self) -> float:
        """Seconds in which a starting process's allowance doubles."""
        return min(max(self.window * START_DOUBLING, START_DOUBLING_MIN), max(self.window, 1.0), 15.0)

    def _probe_doubling(self) -> float:
        """Seconds in which what a probe sends past the share doubles."""
        return max(self.window * PROBE_DOUBLING, 1.0)

    def _probe_after(self) -> float:
        """Seconds after the last 429 before the next probe: drawn once per 429."""
        if self._hold is None:
            assert self._base is not None
            rate = self.requests / self.window
            mean = max(PROBE_MIN_REQUESTS / rate, PROBE_SECONDS)
            if self._sooner or self._base < STARVED * self.requests:
                mean /= SOONER
            else:  # one of many sharing it (its share says how many): the account sees as many probes
                mean *= max(1.0, self.requests / self._base / PROBE_PEERS)
            self._hold = mean * self.rng.uniform(0.5, 1.5)
        return self._hold

    def _prune(self, now: float) -> None:
        edge = now - self.window
        while self._accepted and self._accepted[0] <= edge:
            self._accepted.popleft()
        while self._taken and self._taken[0] <= now - TAKEN_SPAN * self.window:
            self._taken.popleft()
