"""The chunk loop of a sync, and the one place a user is counted.

**Where is a user counted?** In :func:`settle`, once over the whole task:

- every attribute delivered (or skipped: a NULL the vendor cannot express): **succeeded**;
- any attribute rejected (by the validator or the vendor), or a record that cannot become an update at
  all: **failed**, whatever its other attributes did;
- only transient failures: **not counted yet**. Its lines go to the chunk's transient part, whose
  ``uncounted`` holds it; the try that resends and settles it counts it. If the task ends with it still
  unsettled, the report counts it failed and retryable (``SyncState.pending``).
- attributes ``POSTPONED`` (not sent: the vendor's quota asked for a wait longer than ``defer_after``):
  **not counted yet** either; its lines go to the chunk's postponed part, which the resumption after the
  wait sends first (the task was deferred meanwhile).
- A user resent by a retried try that an earlier try already counted (it had a rejection as well as a
  transient failure; its lines say ``"counted": true``) is not counted again.

A failure file given as ``replay_from`` is a new source, not a resend: each of its users is counted afresh.

A chunk goes: send, write its failure parts, move the state, save the checkpoint. A crash anywhere before
the save leaves the previous checkpoint: the chunk is sent again by the next try (what a retried try
resends is told in ``sync/checkpoint.py``). After each saved chunk the engine may be asked to stop
(``should_pause``): it returns with the state saved, and a later run continues from it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync import preview, storage
from airflow_provider_userattrs.sync.checkpoint import CheckpointStore, PacingTotals, SyncState
from airflow_provider_userattrs.sync.chunks import ChunkRunner, ResultsSink, SyncClient, batched
from airflow_provider_userattrs.sync.incremental import IncrementalState, Segment
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.progress import Log, Progress
from airflow_provider_userattrs.sync.report import (
    IncrementalSummary,
    Resumed,
    TryOutcome,
    sample_failures,
)
from airflow_provider_userattrs.sync.sources import Item, replay_items
from airflow_provider_userattrs.sync.tally import ChunkTally

PREVIEW_USERS = 10


def _never() -> bool:
    return False


def _mark_counted(item: Item, counted: set[str]) -> Item:
    update = item.update
    if update is None or str(update.user_id) not in counted:
        return item
    return dataclasses.replace(item, counted=True)


class SyncEngine:
    """Runs a sync in chunks through ``client``, writing failure parts to ``folder``.

    :param client: the vendor client (anything with :class:`SyncClient`'s members).
    :param folder: the task instance's failure folder.
    :param try_number: the Airflow try running now (part files and failure lines carry it).
    :param chunk_size: users per chunk and checkpoint: a crash resends at most this many.
    :param progress: where progress lines go (default: a quiet logger, every 30 s).
    :param ledger: the ledger of the failure file being replayed (``replay_from``): delivered pairs are
        recorded in it chunk by chunk, so that the next replay does not send them again.
    :param should_pause: asked after every saved chunk; True makes the engine return with the state saved
        and ``TryOutcome.paused`` set, for a later run to continue exactly where this one stopped. The
        engine also pauses by itself after a chunk whose users the vendor's quota held back
        (``POSTPONED`` with a ``not_before``): ``TryOutcome.resume_at`` then says when to continue.
    :param results: the results table (``results_table``): each chunk's outcomes are handed to it after its
        failure parts are written, before its checkpoint moves (a crash in between resends, never loses, a row).
    """

    def __init__(
        self,
        client: SyncClient,
        folder: storage.FailureFolder,
        try_number: int,
        *,
        chunk_size: int = 2000,
        progress: Progress | None = None,
        ledger: storage.ReplayLedger | None = None,
        should_pause: Callable[[], bool] = _never,
        results: ResultsSink | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.client = client
        self.folder = folder
        self.try_number = try_number
        self.chunk_size = chunk_size
        self.progress = progress or Progress(logging.getLogger(__name__), 30.0, None)
        self.should_pause = should_pause
        self.chunks = ChunkRunner(client, folder, try_number, ledger, results)
        self._started = time.monotonic()
        self._resume_at: float | None = None

    @property
    def log(self) -> Log:
        return self.progress.log

    # -- a full sync -----------------------------------------------------------------------------------

    def run(self, checkpoint: CheckpointStore, source: Callable[[ResumePoint], Iterable[Item]]) -> TryOutcome:
        """Sync ``source`` (called with where to continue: ``sync/keyset.py``), resuming from ``checkpoint``.

        First the transient failures of earlier tries are resent, then the source continues from where
        the checkpoint says; a clean finish clears the checkpoint.
        """
        state = checkpoint.load() or SyncState()
        resumed = Resumed(offset=state.offset, replayed_users=0)
        if state.paused and state.try_number == self.try_number:
            self.log.info(
                "Resuming after the wait for the vendor's quota (deferral %d): %d source rows settled, the users "
                "not sent yet go first",
                state.pacing.deferrals,
                state.offset,
            )
        elif state.resuming:
            self.log.info(
                "Resuming from the checkpoint of an earlier try: %d source rows already settled, transient "
                "failures of %d part files to resend first",
                state.offset,
                len(state.transient_parts) + len(state.replay.parts),
            )
        state.begin(self.try_number)
        self.progress.start(state.offset)
        replayed = self._resend(state, checkpoint)
        paused = replayed is None or self._continue_source(state, checkpoint, source)
        resumed = dataclasses.replace(resumed, replayed_users=replayed or 0)
        if paused:
            return self._paused(state, resumed)
        self.progress.finish()
        outcome = self._close_out(state, self.folder.file("failures.jsonl"))
        if not outcome.retryable_users:
            checkpoint.clear()  # a clean finish: a later manual re-run starts from scratch
        return dataclasses.replace(outcome, resumed=resumed)

    def _resend(self, state: SyncState, checkpoint: CheckpointStore) -> int | None:
        """Resend the replay queue; the users resent, or None when asked to pause."""
        if not state.replay.parts:
            return 0
        done = 0
        for chunk in batched(replay_items(state.replay.parts, start=state.replay.position), self.chunk_size):
            self._run_chunk(chunk, state, resending=True)
            state.replayed(len(chunk))
            done += len(chunk)
            if self._saved_and_paused(state, checkpoint, len(chunk)):
                return None
        state.replay_done()
        checkpoint.save(state)
        return done

    def _continue_source(
        self, state: SyncState, checkpoint: CheckpointStore, source: Callable[[ResumePoint], Iterable[Item]]
    ) -> bool:
        """Send the source from its resume point on; True when asked to pause."""
        for chunk in batched(source(state.resume_point()), self.chunk_size):
            self._run_chunk(chunk, state, resending=False)
            state.settled([(item.key, item.row) for item in chunk])
            if self._saved_and_paused(state, checkpoint, len(chunk)):
                return True
        return False

    def _saved_and_paused(self, state: SyncState, checkpoint: CheckpointStore, users: int) -> bool:
        self.progress.advance(users)
        paused = self._resume_at is not None or self.should_pause()
        if paused:
            state.pause(time.monotonic() - self._started)
        checkpoint.save(state)
        return paused

    def _paused(self, state: SyncState, resumed: Resumed) -> TryOutcome:
        self.log.info("Paused after %d chunks with the checkpoint saved; a later run continues from it", state.chunks)
        return TryOutcome(
            succeeded=state.succeeded,
            failed=state.failed,
            retryable_users=state.pending,
            failures=[],
            failures_truncated=False,
            failure_file="",
            requests_sent=state.requests_sent,
            try_number=self.try_number,
            skipped_attributes=state.skipped,
            resumed=resumed,
            paused=True,
            resume_at=self._resume_at,
            pacing=state.pacing,
        )

    # -- an incremental sync ---------------------------------------------------------------------------

    def run_incremental(
        self,
        state: IncrementalState,
        segment: Segment,
        *,
        full_refresh: bool,
        remove_missing: bool,
        checkpoint: CheckpointStore | None = None,
    ) -> TryOutcome:
        """Send what differs from ``state``; the incremental state itself is the checkpoint of the users.

        The state is written after each chunk's delivery, never before. A retried (or resumed) run
        recomputes the difference: what an earlier try delivered is no longer different. ``checkpoint``
        keeps the counts across a pause (a deferral): the resumed run continues them, and the users it
        counted failed before the pause (a rejection) are not counted again when the difference brings them
        back.
        """
        sync_state, counted, resumed = incremental_resumption(checkpoint, self.try_number, self.log)
        changed = removed = 0
        paused = False
        self.progress.start(0)
        # A full refresh rewrote the state as it delivered: after a pause, the plain difference is what is left.
        refresh = full_refresh and not resumed
        items = state.items(segment, full_refresh=refresh, remove_missing=remove_missing)
        for chunk in batched(items, self.chunk_size):
            if counted:
                chunk = [_mark_counted(item, counted) for item in chunk]
            tally = self._run_chunk(chunk, sync_state, resending=bool(counted))
            state.record(tally.state_updates)
            removed += sum(1 for item in chunk if item.removal)
            changed += sum(1 for item in chunk if not item.removal)
            self.progress.advance(len(chunk))
            if self._resume_at is not None or self.should_pause():
                paused = True
                break
        self.progress.finish()
        if checkpoint is not None:
            if paused:
                sync_state.pause(time.monotonic() - self._started)
                checkpoint.save(sync_state)
            else:
                checkpoint.clear()
        outcome = self._close_out(sync_state, self.folder.file(f"failures-try{self.try_number}.jsonl"))
        summary = IncrementalSummary(state.state_key, state.where, full_refresh, changed, removed)
        return dataclasses.replace(outcome, incremental=summary, paused=paused, resume_at=self._resume_at)

    # -- a dry run -------------------------------------------------------------------------------------

    def dry_run(self, items: Iterable[Item]) -> TryOutcome:
        """Validate every user as the client would before sending; send nothing (:mod:`.preview`)."""
        return preview.dry_run(self.client, self.folder, self.try_number, items, self.log)

    # -- one chunk -------------------------------------------------------------------------------------

    def _run_chunk(self, chunk: Sequence[Item], state: SyncState, *, resending: bool) -> ChunkTally:
        """One chunk (``chunks.py``); one whose users the vendor's quota held back makes the try pause after it."""
        tally = self.chunks.run(chunk, state, resending=resending)
        if tally.resume_at is not None:
            self._resume_at = max(self._resume_at or tally.resume_at, tally.resume_at)
        return tally

    # -- the end of a try ------------------------------------------------------------------------------

    def _close_out(self, state: SyncState, failure_file: ObjectStoragePath) -> TryOutcome:
        """One failure file from the part files, the counts, a sample of failures."""
        parts = state.failure_parts
        storage.concatenate(failure_file, parts)
        failures, truncated = sample_failures(line for part in parts for line in storage.read_lines(part))
        pending = state.pending
        return TryOutcome(
            succeeded=state.succeeded,
            failed=state.failed + pending,
            retryable_users=pending,
            failures=failures,
            failures_truncated=truncated,
            failure_file=str(failure_file),
            requests_sent=state.requests_sent,
            try_number=self.try_number,
            skipped_attributes=state.skipped,
            pacing=state.pacing,
        )


def incremental_resumption(
    checkpoint: CheckpointStore | None, try_number: int, log: Log
) -> tuple[SyncState, set[str], bool]:
    """The counts of this try before its pause and the users already counted failed, or a fresh start."""
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is None or not saved.paused or saved.try_number != try_number:
        return SyncState(try_number=try_number, pacing=PacingTotals(started_at=time.time())), set(), False
    counted = {
        str(line["user_id"])
        for part in saved.rejected_parts
        for line in storage.read_lines(part)
        if line.get("user_id") is not None
    }
    # The difference brings back every user not delivered yet: its transient parts would count them twice.
    saved.transient_parts = []
    saved.paused = False
    log.info("Resuming after the wait for the vendor's quota (deferral %d)", saved.pacing.deferrals)
    return saved, counted, True
