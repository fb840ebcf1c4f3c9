"""A fake vendor client and helpers to drive the sync engine without Airflow running a task.

The fake vendor outlives a "try" (it is the world outside the worker); a client is per try. Outcomes are
scripted per user: an attribute named ``reserved`` is rejected by the vendor, a value ``"INVALID"`` by the
validator, and ``transient[user]`` failures are returned for that user's first sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.client.sender import ClientStats
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult, UserUpdate
from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint, SyncState
from airflow_provider_userattrs.sync.storage import FailureFolder, Line


class Crash(Exception):
    """A worker dying at a chosen step (nothing after it runs, nothing in memory survives)."""


@dataclass
class FakeVendor:
    transient: dict[object, int] = field(default_factory=dict)
    """User -> how many of its next sends fail transiently (every attribute)."""
    postponed: dict[object, int] = field(default_factory=dict)
    """User -> how many of its next sends are not sent at all (the quota asked for a long wait)."""
    not_before: float | None = None
    """The time a postponed user may go, as a client built to defer long waits says it (None: not said)."""
    stored: dict[object, dict[str, object]] = field(default_factory=dict)
    sends: Counter[object] = field(default_factory=Counter)

    def apply(self, update: UserUpdate) -> UserResult:
        if self.postponed.get(update.user_id, 0) > 0:
            self.postponed[update.user_id] -= 1
            results = [
                AttributeResult(update.user_id, k, Outcome.POSTPONED, v, not_before=self.not_before)
                for k, v in update.attributes.items()
            ]
            return UserResult(update.user_id, results, ref=update.ref)
        self.sends[update.user_id] += 1
        results = []
        failing = self.transient.get(update.user_id, 0) > 0
        if failing:
            self.transient[update.user_id] -= 1
        for name, value in update.attributes.items():
            if name == "reserved":
                results.append(AttributeResult(update.user_id, name, Outcome.REJECTED, value, "reserved name"))
            elif failing:
                results.append(AttributeResult(update.user_id, name, Outcome.FAILED, value, "HTTP 503"))
            else:
                self.stored.setdefault(update.user_id, {})[name] = value
                results.append(AttributeResult(update.user_id, name, Outcome.DELIVERED, value))
        return UserResult(update.user_id, results, ref=update.ref)


class FakeClient:
    """The members of a vendor client the engine uses, one request per user."""

    vendor_name = "fake"

    def __init__(self, world: FakeVendor, *, crash_at_call: int | None = None, crash_after_results: int = 0) -> None:
        self.world = world
        self.requests_sent = 0
        self.throttled_requests = 0
        self.waited_seconds = 0.0
        self.calls = 0
        self.crash_at_call = crash_at_call
        """``update_users`` call (0-based) that dies after ``crash_after_results`` results."""
        self.crash_after_results = crash_after_results

    def stats(self) -> ClientStats:
        return ClientStats(self.requests_sent, self.throttled_requests, self.waited_seconds)

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        bad = [
            AttributeResult(update.user_id, k, Outcome.REJECTED, v, f"{k} is invalid")
            for k, v in update.attributes.items()
            if v == "INVALID"
        ]
        good = {k: v for k, v in update.attributes.items() if v != "INVALID"}
        return (UserUpdate(update.user_id, good, ref=update.ref) if good else None), bad

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        call = self.calls
        self.calls += 1
        updates = list(updates)
        for index, update in enumerate(updates):
            if call == self.crash_at_call and index == self.crash_after_results:
                raise Crash(f"worker died in call {call} after {index} users")
            sendable, problems = self.validate(update)
            result = UserResult(update.user_id, list(problems), ref=update.ref)
            if sendable is not None:
                self.requests_sent += 1
                result.results.extend(self.world.apply(sendable).results)
            yield result
        if call == self.crash_at_call and self.crash_after_results >= len(updates):
            raise Crash(f"worker died in call {call} after sending it all")


class CrashingFolder(FailureFolder):
    """A failure folder whose ``crash_at``-th part write (0-based) dies before writing."""

    def __init__(self, path: ObjectStoragePath, crash_at: int | None = None) -> None:
        super().__init__(path)
        self.crash_at = crash_at
        self.writes = 0

    def write_part(self, try_number: int, chunk: int, kind: str, lines: Iterable[Line]) -> str:
        writes, self.writes = self.writes, self.writes + 1
        if writes == self.crash_at:
            raise Crash(f"worker died before writing part {writes}")
        return super().write_part(try_number, chunk, kind, lines)


class CrashingCheckpoint(MemoryCheckpoint):
    """An in-memory checkpoint whose ``crash_at``-th save (0-based) dies before saving."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at = crash_at

    def save(self, state: SyncState) -> None:
        if self.saves == self.crash_at:
            self.crash_at = None
            raise Crash(f"worker died before checkpoint save {self.saves}")
        super().save(state)
