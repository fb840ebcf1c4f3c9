"""How one user is counted once, and what its failures leave behind (the engine's and the dry run's rule).

See :mod:`airflow_provider_userattrs.sync.engine` for where a user is counted over a whole task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult
from airflow_provider_userattrs.sync.incremental import StateUpdate
from airflow_provider_userattrs.sync.sources import Item

FailureLine = dict[str, object]
"""One line of a failure file: position, vendor, try_number and the attribute's result (``to_dict``)."""


@dataclass
class ChunkTally:
    """What one chunk settled, and the failure lines it produced."""

    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    """Users with only transient failures: in the transient part, not counted yet."""
    postponed_pending: int = 0
    """Users the vendor's quota held back (``POSTPONED``): in the postponed part, not counted yet."""
    skipped: int = 0
    rejected_lines: list[FailureLine] = field(default_factory=list)
    transient_lines: list[FailureLine] = field(default_factory=list)
    postponed_lines: list[FailureLine] = field(default_factory=list)
    state_updates: list[StateUpdate] = field(default_factory=list)
    """Incremental sync: (user, attribute, value text) the vendor accepted, to write to the state."""
    delivered: list[FailureLine] | None = None
    """``{"user_id", "attribute"}`` pairs delivered, kept only when replaying a failure file (its ledger)."""
    outcomes: list[FailureLine] | None = None
    """A line per attribute whatever its outcome (and per record that could not become an update), kept only
    for a results table that wants more than the failure lines (``sync/results_table.py``)."""
    resume_at: float | None = None
    """When the users the quota held back may go (wall-clock time), if the client said: the try pauses."""


def settle(
    tally: ChunkTally, item: Item, result: UserResult | None, *, vendor: str, try_number: int, resending: bool
) -> None:
    """Count one user once (see the module's docstring), and turn its failures into failure lines.

    ``result`` is None for a record that could not become an update; ``resending`` is True for the users
    of earlier tries' transient parts, whose lines remember whether they were counted.
    """
    base: FailureLine = {"position": item.position, "vendor": vendor, "try_number": try_number}
    if result is None:
        tally.failed += 1
        nobody = AttributeResult(None, "", Outcome.REJECTED, reason=item.problem).to_dict()
        tally.rejected_lines.append({**base, **nobody, "attribute": None})
        if tally.outcomes is not None:
            tally.outcomes.append(tally.rejected_lines[-1])
        return
    rejected = [r for r in result.results if r.outcome is Outcome.REJECTED]
    unsettled = [r for r in result.results if r.outcome in (Outcome.FAILED, Outcome.POSTPONED)]
    # A user the quota held back (POSTPONED: not sent) goes to the postponed part, with its transient
    # failures: the resumption after the wait sends it. Transient failures alone wait for the next try.
    held_back = any(r.outcome is Outcome.POSTPONED for r in unsettled)
    if held_back and (until := result.not_before) is not None:
        tally.resume_at = max(tally.resume_at or until, until)
    tally.skipped += sum(1 for r in result.results if r.outcome is Outcome.SKIPPED)
    counted_before = resending and item.counted
    if not counted_before:
        if rejected:
            tally.failed += 1
        elif held_back:
            tally.postponed_pending += 1
        elif unsettled:
            tally.pending += 1
        else:
            tally.succeeded += 1
    tally.rejected_lines.extend({**base, **r.to_dict()} for r in rejected)
    # The line remembers whether its user is counted: a resend must not count it a second time.
    counted_now = counted_before or bool(rejected)
    lines = tally.postponed_lines if held_back else tally.transient_lines
    lines.extend({**base, **r.to_dict(), "retryable": True, "counted": counted_now} for r in unsettled)
    if tally.outcomes is not None:
        tally.outcomes.extend({**base, **r.to_dict()} for r in result.results)
    _remember_delivered(tally, item, result)


def _remember_delivered(tally: ChunkTally, item: Item, result: UserResult) -> None:
    accepted = [r for r in result.results if r.outcome in (Outcome.DELIVERED, Outcome.SKIPPED)]
    if item.state is not None and item.state_user is not None:
        # Only what the item says how to remember: a NULL skipped by null_values="skip" is not named, so the
        # state keeps the value last delivered (sync/nulls.py).
        state = item.state
        tally.state_updates.extend(
            (item.state_user, r.attribute, state[r.attribute]) for r in accepted if r.attribute in state
        )
    if tally.delivered is not None:
        tally.delivered.extend({"user_id": r.user_id, "attribute": r.attribute} for r in accepted)
