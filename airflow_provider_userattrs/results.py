"""Outcome types shared by every hook and operator.

A sync is only trustworthy if every (user, attribute) pair ends in exactly one known outcome, so the hooks
never return "it probably worked": each pair is delivered, rejected (permanent, never retried), failed
(transient, worth retrying later) or skipped (a NULL the vendor cannot express, counted, never silent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

UserId = str | int


class Outcome(StrEnum):
    """What happened to one attribute of one user."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    POSTPONED = "postponed"
    """Not sent: the vendor's quota asked for a wait longer than ``defer_after``. Only a client built to
    defer long waits (``connect(..., defer_long_waits=True)``, as the operators build theirs) answers this,
    with the time it may go in ``not_before``; the user is sent after the wait."""

    @property
    def is_failure(self) -> bool:
        return self in (Outcome.REJECTED, Outcome.FAILED)


@dataclass(frozen=True, slots=True)
class AttributeResult:
    """The outcome of setting one attribute of one user.

    ``reason`` is written for a person: it names the rule or the vendor's message, never a token.
    ``value`` is kept so that a failure file can be replayed without going back to the warehouse.
    """

    user_id: UserId | None
    attribute: str
    outcome: Outcome
    value: Any = None
    reason: str | None = None
    not_before: float | None = None
    """For ``POSTPONED``: the wall-clock time (Unix seconds) the vendor's quota allows it to be sent."""

    @property
    def retryable(self) -> bool:
        """Only transient failures are worth sending again; a rejection would be rejected again."""
        return self.outcome is Outcome.FAILED

    def to_dict(self) -> dict[str, Any]:
        line = {
            "user_id": self.user_id,
            "attribute": self.attribute,
            "outcome": self.outcome.value,
            "value": self.value,
            "reason": self.reason,
            "retryable": self.retryable,
        }
        if self.not_before is not None:
            line["not_before"] = self.not_before
        return line


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """Attributes to set on one user: the unit every hook method consumes."""

    user_id: UserId
    attributes: Mapping[str, Any]
    ref: Any = None
    """The caller's tag for this update (a row number, say), handed back on its :class:`UserResult`."""


@dataclass(slots=True)
class UserResult:
    """Every attribute outcome of one :class:`UserUpdate`, in one place.

    A user counts as failed when any of its attributes failed, even if others were delivered: a
    half-synced profile is not a synced profile.
    """

    user_id: UserId | None
    results: list[AttributeResult] = field(default_factory=list)
    ref: Any = None

    @property
    def ok(self) -> bool:
        """Every attribute delivered or skipped (none failed, none postponed)."""
        return not any(r.outcome.is_failure or r.outcome is Outcome.POSTPONED for r in self.results)

    @property
    def postponed(self) -> bool:
        """Some attributes were not sent yet because the vendor asked for a long wait (see ``POSTPONED``)."""
        return any(r.outcome is Outcome.POSTPONED for r in self.results)

    @property
    def not_before(self) -> float | None:
        """When the postponed attributes may be sent (the latest time the vendor's quota asked for), or None."""
        times = [r.not_before for r in self.results if r.outcome is Outcome.POSTPONED and r.not_before is not None]
        return max(times) if times else None

    @property
    def failures(self) -> list[AttributeResult]:
        return [r for r in self.results if r.outcome.is_failure]

    @property
    def delivered(self) -> list[AttributeResult]:
        return [r for r in self.results if r.outcome is Outcome.DELIVERED]

    @property
    def retryable(self) -> bool:
        """True when at least one failure is transient (the user should be sent again later)."""
        return any(r.retryable for r in self.results)
