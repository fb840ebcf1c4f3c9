"""Users done, rate and ETA in the task log, at a steady interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Log(Protocol):
    """The little of a logger the engine uses (the task's ``self.log``, or any ``logging.Logger``)."""

    def info(self, msg: str, /, *args: object) -> None: ...


class Progress:
    """A progress line every ``interval`` seconds of the injected ``clock``, and one at the end."""

    def __init__(
        self, log: Log, interval: float, total: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.log, self.interval, self.total, self.clock = log, interval, total, clock
        self.start(0)

    def start(self, before: int) -> None:
        """A try begins with ``before`` users settled by earlier tries."""
        self.done = 0
        self.before = before
        self.started = self.last = self.clock()

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.log.info("Progress: %s", self.line(now))

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        text = f"{self.done:,} users settled this try ({self.before:,} before it), {rate:,.0f} users/s"
        if self.total:
            left = max(self.total - self.before - self.done, 0)
            text += f", {left:,} left, ETA {left / rate:,.0f} s" if rate else ""
        return text

    def finish(self) -> None:
        self.log.info("Finished: %s", self.line(self.clock()))
