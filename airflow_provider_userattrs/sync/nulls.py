"""``null_values``: what a NULL in the source does at the vendor.

- ``"clear"`` (the default, and the behaviour before the parameter existed): a NULL is sent as the vendor's
  removal (DX ``null``, Fyno ``$unset``, User.com cleared); AltaTech, which cannot remove, reports it skipped.
- ``"skip"``: a NULL is never sent. The attribute is left out of that user's update and answered
  ``SKIPPED`` with :data:`SKIPPED_NULL_REASON`, so the report's ``skipped_attributes`` counts it; a user whose
  attributes were all NULL is sent nothing and still counted once (succeeded: nothing of it failed). A broken
  join that NULLs a column then cannot wipe the vendor's values.

One exception: the removal of a user who left the segment (``remove_missing``) is not a NULL of the source
but an explicit removal (its attributes are a :class:`Removal`); ``null_values`` leaves it alone, and
``max_removals`` guards it.

The incremental state's side of ``skip`` (a skipped NULL is not written as delivered, and is not counted as a
removal) is :class:`~airflow_provider_userattrs.sync.incremental.Segment`'s ``skip_nulls``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from airflow_provider_userattrs.client.sender import ClientStats
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserId, UserResult, UserUpdate
from airflow_provider_userattrs.sync.progress import Log

NULL_VALUES = ("clear", "skip")
"""The choices of ``null_values``; the first is the default."""

SKIPPED_NULL_REASON = "NULL not sent (null_values='skip'): the vendor keeps its value"


class Removal(dict[str, None]):
    """The attributes of a user who left the segment (``remove_missing``), all None: an explicit removal,
    which ``null_values="skip"`` still sends."""


class _Client(Protocol):
    """What the engine needs of a client (``sync/engine.py``'s ``SyncClient``)."""

    @property
    def vendor_name(self) -> str: ...

    def stats(self) -> ClientStats: ...

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]: ...

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]: ...


def without_nulls(update: UserUpdate) -> tuple[UserUpdate, list[str]]:
    """``update`` without its NULL attributes, and their names (a :class:`Removal` is kept whole)."""
    if isinstance(update.attributes, Removal):
        return update, []
    skipped = [str(name) for name, value in update.attributes.items() if value is None]
    if not skipped:
        return update, []
    kept = {name: value for name, value in update.attributes.items() if value is not None}
    return dataclasses.replace(update, attributes=kept), skipped


def _skipped(user_id: UserId | None, names: Sequence[str]) -> list[AttributeResult]:
    return [AttributeResult(user_id, name, Outcome.SKIPPED, None, SKIPPED_NULL_REASON) for name in names]


class SkippingNulls:
    """A client that never sends a NULL (``null_values="skip"``), around the one that sends.

    :param client: the vendor client (or anything with the engine's ``SyncClient`` members).
    :param log: where the first skipped NULL is announced (the report counts them all).
    """

    def __init__(self, client: _Client, log: Log) -> None:
        self.client = client
        self.log = log
        self._announced = False

    @property
    def vendor_name(self) -> str:
        return self.client.vendor_name

    def stats(self) -> ClientStats:
        return self.client.stats()

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]:
        """The client's validation of the rest, and the NULLs answered ``SKIPPED`` (a dry run's view)."""
        kept, skipped = without_nulls(update)
        sendable, results = self.client.validate(kept)
        self._announce(skipped)
        return sendable, [*results, *_skipped(sendable.user_id if sendable else update.user_id, skipped)]

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        """As the client's, the NULLs left out of each update and added back to its result as ``SKIPPED``.

        The client hands results back in completion order: each update goes with a number of ours as its
        ``ref``, which finds its skipped names and its own ``ref`` again.
        """
        waiting: dict[int, tuple[Any, UserId, list[str]]] = {}

        def stripped() -> Iterator[UserUpdate]:
            for number, update in zip(itertools.count(), updates, strict=False):
                kept, skipped = without_nulls(update)
                self._announce(skipped)
                waiting[number] = (update.ref, update.user_id, skipped)
                yield dataclasses.replace(kept, ref=number)

        for result in self.client.update_users(stripped()):
            ref, user_id, skipped = waiting.pop(result.ref)
            result.ref = ref
            result.results.extend(_skipped(result.user_id if result.user_id is not None else user_id, skipped))
            yield result

    def _announce(self, skipped: Sequence[str]) -> None:
        if skipped and not self._announced:
            self._announced = True
            self.log.info(
                "null_values='skip': NULL attributes are left out of the updates (first: %s), the vendor keeps "
                "its values; the report counts them in skipped_attributes",
                skipped[0],
            )
