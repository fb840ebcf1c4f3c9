"""How a request gets its turn: the thread pool, the calls in flight and the per-user ordering.

One :class:`CallScheduler` runs the calls of one ``update_users`` stream. The rules, all here:

* at most ``concurrency`` calls run at once (the pool's threads, matched by the HTTP pool's size), and at
  most ``2 * concurrency`` are submitted, so that a streamed input of millions of users holds a bounded
  number of users in memory;
* a window that holds a user whose earlier call is still in flight waits until that call has answered:
  a later record of a user never overtakes an earlier one, so the last record wins;
* a window's results are handed back once every call of the window has answered (a user planned into
  several calls, User.com's mass updates, is complete only then).

Each attempt of a call then waits for the client's pacer (:class:`~.sender.Sender`): the scheduler decides
which call may go, the pacer when.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from airflow_provider_userattrs.client.calls import Call, Outcomes
from airflow_provider_userattrs.results import UserId, UserResult


@dataclass
class Window:
    """Users planned together, and the calls that carry them."""

    results: list[UserResult]
    """One result per input update of the window, in input order; outcomes are added as calls answer."""
    users: frozenset[UserId]
    calls: list[Call]
    calls_left: int = field(init=False)

    def __post_init__(self) -> None:
        self.calls_left = len(self.calls)


class CallScheduler:
    """Runs windows' calls concurrently; yields each window's results once all its calls have answered."""

    def __init__(self, run_call: Callable[[Call], Outcomes], concurrency: int, name: str) -> None:
        self._run_call = run_call
        self._concurrency = concurrency
        self._max_submitted = concurrency * 2
        self._name = name
        self._in_flight: dict[Future[Outcomes], Window] = {}
        # Finished calls announce themselves here: no scan of every pending future after each window.
        self._finished: queue.SimpleQueue[Future[Outcomes]] = queue.SimpleQueue()
        self._busy: dict[UserId, int] = {}
        """Users with a call in flight, and how many windows hold them."""

    def run(self, windows: Iterable[Window]) -> Iterator[UserResult]:
        """Results of every window, in completion order."""
        executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix=f"userattrs-{self._name}")
        try:
            for window in windows:
                while self._in_flight and (len(self._in_flight) >= self._max_submitted or self._overlaps(window)):
                    yield from self._collect(block=True)
                if not window.calls:
                    yield from window.results
                    continue
                self._submit(executor, window)
                yield from self._collect(block=False)
            while self._in_flight:
                yield from self._collect(block=True)
        finally:
            for future in self._in_flight:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)

    def _overlaps(self, window: Window) -> bool:
        return any(user in self._busy for user in window.users)

    def _submit(self, executor: ThreadPoolExecutor, window: Window) -> None:
        for user in window.users:
            self._busy[user] = self._busy.get(user, 0) + 1
        for call in window.calls:
            future = executor.submit(self._run_call, call)
            self._in_flight[future] = window
            future.add_done_callback(self._finished.put)

    def _collect(self, *, block: bool) -> Iterator[UserResult]:
        done = [self._finished.get()] if block else []
        while True:
            try:
                done.append(self._finished.get_nowait())
            except queue.Empty:
                break
        for future in done:
            window = self._in_flight.pop(future)
            for ref, outcome in future.result():
                window.results[ref].results.append(outcome)
            window.calls_left -= 1
            if not window.calls_left:
                self._release(window)
                yield from window.results

    def _release(self, window: Window) -> None:
        for user in window.users:
            self._busy[user] -= 1
            if not self._busy[user]:
                del self._busy[user]
