"""The checkpoint of a sync: what earlier tries settled, and so what a retried try resends.

**What does a retried try resend?** Exactly two things, in this order (see :meth:`SyncState.begin`):

1. the users of earlier tries that failed *transiently* (the ``transient_parts``), read back from their
   part files and resent; a rejection is never resent;
2. the source from where it stopped (:meth:`SyncState.resume_point`): a SQL source after the last settled
   user id (``sync/keyset.py``: no ``ORDER BY`` needed), a list after the settled positions. The point moves
   only after a chunk's failure parts are written and the state is saved, so the chunk that was in flight
   when a try died is the only one sent twice.

The state is a typed, versioned dataclass. It lives in Airflow 3.3's task state store (scoped to DAG run,
task and map index, kept in the metadata database, surviving task retries); where the store is not
available, in a JSON file beside the failure files. A schema change bumps :data:`VERSION`; an older
checkpoint is converted on reading, an unknown one is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.keyset import Key, ResumePoint
from airflow_provider_userattrs.sync.storage import write_text_atomically

VERSION = 4
"""Version 2: typed fields; chunk numbers kept in the state rather than derived from the try number.
Version 3: ``postponed_parts``, ``pacing`` (deferrals, waits, 429s) and ``paused`` (a deferred try).
Version 4: ``resume_key`` and ``resume_at_key``: a SQL source resumes by user id (older versions: by position)."""
CHECKPOINT_KEY = "userattrs_checkpoint"


class CheckpointError(Exception):
    """A checkpoint this version cannot read: the message names it and what to do."""


@dataclass
class TransientPart:
    """A part file of transient failures, resent by the next try."""

    path: str
    uncounted: int
    """Users of this part not counted yet (they had only transient failures): reported as failed and
    retryable if the task ends now, counted by the try that settles them."""


@dataclass
class ReplayQueue:
    """Transient parts of earlier tries being resent, and how many of their users are already settled."""

    parts: list[str] = field(default_factory=list)
    position: int = 0


@dataclass
class PacingTotals:
    """What the vendor's quota cost the sync, over every resumption of the task."""

    deferrals: int = 0
    """Times the task was deferred to wait for the quota (its worker slot freed meanwhile)."""
    waited_seconds: float = 0.0
    """Seconds requests waited for their turn or a retry inside the worker (summed over threads)."""
    throttled_requests: int = 0
    """Answers that were 429."""
    worker_seconds: float = 0.0
    """Time the task held a worker slot before its latest resumption (the triggerer held it meanwhile)."""
    started_at: float | None = None
    """Unix time this try started, before any deferral."""
    quota_requests: int | None = None
    """The quota the client paced to (requests per ``quota_window_seconds``), None when none was declared: what
    the report's ``quota_used`` is measured against (:mod:`.quota_use`)."""
    quota_window_seconds: float | None = None


@dataclass
class SyncState:
    """Everything a try needs to continue where the previous one stopped."""

    offset: int = 0
    """Source rows settled: a list resumes at this position."""
    resume_key: Key = None
    """The last settled user id, where a SQL source resumes (None: no non-NULL id settled yet)."""
    resume_at_key: list[str] = field(default_factory=list)
    """Digests of the rows at ``resume_key`` settled (duplicates of one id may straddle a chunk boundary)."""
    keyed: bool = True
    """False for a checkpoint of a version before 4: its SQL source resumes by position, as it was written."""
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    """Attributes the vendor could not express (a NULL for AltaTech): counted, never silent."""
    rejected_parts: list[str] = field(default_factory=list)
    transient_parts: list[TransientPart] = field(default_factory=list)
    postponed_parts: list[TransientPart] = field(default_factory=list)
    """Users the vendor's quota held back (not sent): the resumption after the wait sends them first."""
    replay: ReplayQueue = field(default_factory=ReplayQueue)
    requests_sent: int = 0
    chunks: int = 0
    """Chunks recorded so far: the next chunk's number (part files also carry the try)."""
    try_number: int = 0
    """The try that saved this state: a later try resends its transient failures."""
    pacing: PacingTotals = field(default_factory=PacingTotals)
    paused: bool = False
    """Saved by a try that paused (deferred) to wait for the vendor's quota, to be resumed."""

    @property
    def pending(self) -> int:
        """Users whose only failures were transient and that no try has settled since: not yet counted."""
        return sum(part.uncounted for part in (*self.transient_parts, *self.postponed_parts))

    @property
    def failure_parts(self) -> list[str]:
        """Every part file of the task's failure file, rejections first."""
        unsettled = (*self.transient_parts, *self.postponed_parts)
        return [*self.rejected_parts, *(part.path for part in unsettled)]

    @property
    def resuming(self) -> bool:
        """Whether an earlier try left anything settled or to resend."""
        return bool(self.offset or self.transient_parts or self.postponed_parts or self.replay.parts)

    def resume_point(self) -> ResumePoint:
        """Where the source continues."""
        return ResumePoint(self.offset, self.resume_key, tuple(self.resume_at_key), self.keyed)

    def settled(self, rows: Sequence[tuple[object, object]]) -> None:
        """The next source rows ((user id, row), in source order) are settled: the resume point moves."""
        point = self.resume_point().after(rows)
        self.offset, self.resume_key, self.resume_at_key = point.offset, point.key, list(point.at_key)

    def begin(self, try_number: int) -> None:
        """Start (or resume) ``try_number``: a new try queues the transient failures of the earlier ones.

        They are appended to the replay queue, whose position counts users across its parts, so that a
        try that died during a replay continues it where it stopped.
        """
        if try_number != self.try_number:
            self.replay.parts.extend(part.path for part in self.transient_parts)
            self.transient_parts = []
        # What the quota held back goes first after the wait, and with any later try.
        self.replay.parts.extend(part.path for part in self.postponed_parts)
        self.postponed_parts = []
        if try_number != self.try_number or self.pacing.started_at is None:
            self.pacing.started_at = time.time()  # the wall time of a try counts from its start
        self.try_number = try_number
        self.paused = False

    def pause(self, worker_seconds: float) -> None:
        """This try stops here to wait for the vendor's quota (the task is deferred) and resumes later.

        :param worker_seconds: how long this resumption held its worker slot.
        """
        self.paused = True
        self.pacing.deferrals += 1
        self.pacing.worker_seconds += worker_seconds

    def add_chunk(
        self,
        *,
        succeeded: int,
        failed: int,
        skipped: int,
        requests_sent: int,
        rejected_part: str | None,
        transient_part: TransientPart | None,
        postponed_part: TransientPart | None = None,
        throttled_requests: int = 0,
        waited_seconds: float = 0.0,
        quota: tuple[int, float] | None = None,
    ) -> None:
        """Record what one chunk settled (its counts come from ``sync/engine.py``) and its part files.
        ``quota``: the one the client paced to (:attr:`ClientStats.quota`)."""
        self.succeeded += succeeded
        self.failed += failed
        self.skipped += skipped
        self.requests_sent += requests_sent
        self.pacing.throttled_requests += throttled_requests
        self.pacing.waited_seconds += waited_seconds
        if quota is not None:
            self.pacing.quota_requests, self.pacing.quota_window_seconds = quota
        if rejected_part is not None:
            self.rejected_parts.append(rejected_part)
        if transient_part is not None:
            self.transient_parts.append(transient_part)
        if postponed_part is not None:
            self.postponed_parts.append(postponed_part)
        self.chunks += 1

    def replayed(self, users: int) -> None:
        """``users`` more users of the replay queue are settled."""
        self.replay.position += users

    def replay_done(self) -> None:
        self.replay = ReplayQueue()

    def to_json(self) -> dict[str, object]:
        """The JSON document stored (version included)."""
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], where: str) -> SyncState:
        """Read a stored document of any known version; ``where`` names the checkpoint in errors."""
        version = document.get("version")
        if version == 1:
            return cls._from_version_1(document)
        if version not in (2, 3, VERSION):
            raise CheckpointError(
                f"the checkpoint at {where} has version {version!r}, which this provider version cannot read "
                f"(it reads versions 1 to {VERSION}): it was written by another version of "
                "airflow-provider-userattrs. Clear the task (its next run starts from the first user) or run the "
                "provider version that wrote it."
            )
        replay = document.get("replay") or {}
        return cls(
            offset=int(document["offset"]),
            succeeded=int(document["succeeded"]),
            failed=int(document["failed"]),
            skipped=int(document["skipped"]),
            rejected_parts=[str(p) for p in document["rejected_parts"]],
            transient_parts=[TransientPart(str(p["path"]), int(p["uncounted"])) for p in document["transient_parts"]],
            postponed_parts=[
                TransientPart(str(p["path"]), int(p["uncounted"])) for p in document.get("postponed_parts", [])
            ],
            replay=ReplayQueue([str(p) for p in replay.get("parts", [])], int(replay.get("position", 0))),
            requests_sent=int(document["requests_sent"]),
            chunks=int(document["chunks"]),
            try_number=int(document["try_number"]),
            pacing=PacingTotals(**(document.get("pacing") or {})),  # absent in version 2
            paused=bool(document.get("paused", False)),
            resume_key=document.get("resume_key"),
            resume_at_key=[str(d) for d in document.get("resume_at_key", [])],
            # A checkpoint of version 2 or 3 counted positions: only its start is the same by key.
            keyed=(version == VERSION and bool(document.get("keyed", True))) or int(document["offset"]) == 0,
        )

    @classmethod
    def _from_version_1(cls, document: Mapping[str, Any]) -> SyncState:
        """Version 1 (provider 0.x): an untyped dict; ``skipped`` was added later and may be absent.

        Its try is unknown (0): the reading try resends its transient parts, as a retried try must.
        """
        replay = document.get("replay") or {}
        rejected = [str(p) for p in document.get("final_parts", [])]
        transient = [TransientPart(str(p["path"]), int(p["uncounted"])) for p in document.get("retry_parts", [])]
        return cls(
            offset=int(document.get("offset", 0)),
            succeeded=int(document.get("succeeded", 0)),
            failed=int(document.get("failed", 0)),
            skipped=int(document.get("skipped", 0)),
            rejected_parts=rejected,
            transient_parts=transient,
            replay=ReplayQueue([str(p) for p in replay.get("parts", [])], int(replay.get("pos", 0))),
            requests_sent=int(document.get("requests_sent", 0)),
            chunks=len(rejected) + len(transient),
            keyed=int(document.get("offset", 0)) == 0,
        )


class CheckpointStore(Protocol):
    """Where a :class:`SyncState` outlives the try that wrote it."""

    def load(self) -> SyncState | None:
        """The saved state, or None when there is none (a first try, or after a clean finish)."""
        ...

    def save(self, state: SyncState) -> None: ...

    def clear(self) -> None: ...


class TaskStateCheckpoint:
    """The checkpoint in Airflow's task state store (``context["task_state_store"]``)."""

    def __init__(self, accessor: Any) -> None:
        self._accessor = accessor

    def load(self) -> SyncState | None:
        value = self._accessor.get(CHECKPOINT_KEY)
        return SyncState.from_json(value, self.where) if isinstance(value, Mapping) else None

    def save(self, state: SyncState) -> None:
        self._accessor.set(CHECKPOINT_KEY, state.to_json())

    def clear(self) -> None:
        self._accessor.delete(CHECKPOINT_KEY)

    @property
    def where(self) -> str:
        return f"the task state store (key {CHECKPOINT_KEY!r})"


class ObjectStorageCheckpoint:
    """The checkpoint as a JSON file in the task's failure folder (for runtimes without a state store)."""

    def __init__(self, folder: ObjectStoragePath) -> None:
        self._path = folder / "checkpoint.json"

    def load(self) -> SyncState | None:
        if not self._path.exists():
            return None
        try:
            value = json.loads(self._path.read_text())
        except ValueError:
            return None
        return SyncState.from_json(value, str(self._path)) if isinstance(value, Mapping) else None

    def save(self, state: SyncState) -> None:
        write_text_atomically(self._path, json.dumps(state.to_json()))

    def clear(self) -> None:
        if self._path.exists():
            self._path.unlink()


class MemoryCheckpoint:
    """A checkpoint kept as its JSON text in memory, for tests: what a crash loses is exactly what the
    stored document does not hold."""

    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self.text: str | None = json.dumps(document) if document is not None else None
        self.saves = 0

    def load(self) -> SyncState | None:
        return SyncState.from_json(json.loads(self.text), "memory") if self.text is not None else None

    def save(self, state: SyncState) -> None:
        self.text = json.dumps(state.to_json())
        self.saves += 1

    def clear(self) -> None:
        self.text = None


def checkpoint_store(context: Mapping[str, Any], folder: ObjectStoragePath) -> CheckpointStore:
    """The task state store when the runtime offers one, else a file in the task's failure folder."""
    accessor = context.get("task_state_store")
    return TaskStateCheckpoint(accessor) if accessor is not None else ObjectStorageCheckpoint(folder)
