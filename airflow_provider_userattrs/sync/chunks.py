"""One chunk of a sync: sent through the client, its failure parts written, its outcomes handed to the results
table and the replay ledger, and what it settled added to the try's state.

Each user is counted by :func:`~airflow_provider_userattrs.sync.tally.settle`; the loop over the chunks, and when
it pauses, is the engine's (``engine.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from airflow_provider_userattrs.client.sender import ClientStats
from airflow_provider_userattrs.results import AttributeResult, UserResult, UserUpdate
from airflow_provider_userattrs.sync import storage
from airflow_provider_userattrs.sync.checkpoint import SyncState, TransientPart
from airflow_provider_userattrs.sync.sources import Item
from airflow_provider_userattrs.sync.tally import ChunkTally, FailureLine, settle


class SyncClient(Protocol):
    """What the engine needs of a vendor client (every ``Client`` is one; tests use a fake)."""

    @property
    def vendor_name(self) -> str: ...

    def stats(self) -> ClientStats: ...

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]: ...

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]: ...


class ResultsSink(Protocol):
    """Where each chunk's outcomes go besides its failure parts: the results table (``sync/results_table.py``)."""

    @property
    def every_outcome(self) -> bool:
        """Whether a chunk keeps a line per attribute whatever its outcome (``ChunkTally.outcomes``)."""
        ...

    def write(self, tally: ChunkTally) -> None:
        """Record what one chunk settled; called before the chunk's checkpoint (or state) moves."""
        ...


def batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


@dataclass(frozen=True)
class ChunkRunner:
    """Runs the chunks of one try (the engine's parameters of the same names)."""

    client: SyncClient
    folder: storage.FailureFolder
    try_number: int
    ledger: storage.ReplayLedger | None = None
    results: ResultsSink | None = None

    def run(self, chunk: Sequence[Item], state: SyncState, *, resending: bool) -> ChunkTally:
        """Send one chunk, write its failure parts, and record what it settled in ``state``.

        :param resending: the chunk holds earlier tries' transient failures, whose lines say whether they were
            counted.
        :return: what the chunk settled; its ``resume_at`` says when users the quota held back may go.
        """
        before = self.client.stats()
        tally = self._send(chunk, resending)
        after = self.client.stats()
        number = state.chunks
        rejected = self._part(number, "rejected", tally.rejected_lines)
        transient = self._part(number, "transient", tally.transient_lines)
        postponed = self._part(number, "postponed", tally.postponed_lines)
        if self.results is not None:
            self.results.write(tally)
        if self.ledger is not None and tally.delivered:
            # A unique name per replayed chunk: object stores cannot append, and runs must not overwrite.
            self.ledger.record(tally.delivered, f"{time.time_ns()}-try{self.try_number}-{number}")
        state.add_chunk(
            succeeded=tally.succeeded,
            failed=tally.failed,
            skipped=tally.skipped,
            requests_sent=after.requests_sent - before.requests_sent,
            rejected_part=rejected,
            transient_part=TransientPart(transient, tally.pending) if transient else None,
            postponed_part=TransientPart(postponed, tally.postponed_pending) if postponed else None,
            throttled_requests=after.throttled_requests - before.throttled_requests,
            waited_seconds=after.waited_seconds - before.waited_seconds,
            quota=after.quota,
        )
        return tally

    def _part(self, number: int, kind: str, lines: list[FailureLine]) -> str | None:
        return self.folder.write_part(self.try_number, number, kind, lines) if lines else None

    def _send(self, chunk: Sequence[Item], resending: bool) -> ChunkTally:
        every_outcome = self.results is not None and self.results.every_outcome
        tally = ChunkTally(delivered=[] if self.ledger is not None else None, outcomes=[] if every_outcome else None)
        vendor = self.client.vendor_name
        updates: list[UserUpdate] = []
        for index, item in enumerate(chunk):
            if item.update is None:
                settle(tally, item, None, vendor=vendor, try_number=self.try_number, resending=resending)
            else:
                updates.append(dataclasses.replace(item.update, ref=index))  # the chunk index comes back
        for result in self.client.update_users(updates):
            item = chunk[result.ref]
            settle(tally, item, result, vendor=vendor, try_number=self.try_number, resending=resending)
        return tally
