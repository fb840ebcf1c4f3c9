"""What a test server (the SMTP and Slack webhook sinks) received, in order, read with bounded waits."""

from __future__ import annotations

import queue
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self) -> None:
        self.received: queue.Queue[T] = queue.Queue()

    def get(self, timeout: float = 30.0) -> T:
        """The next item received (waits at most ``timeout`` seconds)."""
        return self.received.get(timeout=timeout)

    def drain(self) -> list[T]:
        """Every item received so far, without waiting."""
        out = []
        while True:
            try:
                out.append(self.received.get_nowait())
            except queue.Empty:
                return out
