"""The sync engine driven directly: a fake client, an in-memory checkpoint, failure files in tmp; no task run.

Each "try" is a new engine and a new client over the same checkpoint, folder and fake vendor, as a retried
Airflow try gets a new process over the same metadata DB, object storage and vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.checkpoint import CheckpointStore, MemoryCheckpoint
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.report import TryOutcome
from airflow_provider_userattrs.sync.sources import Item, from_records, replay_items
from airflow_provider_userattrs.sync.storage import FailureFolder, ReplayLedger, read_lines
from tests.sync.fakes import Crash, CrashingCheckpoint, CrashingFolder, FakeClient, FakeVendor

CHUNK = 4


def rows(count: int, *, reserved: Iterable[int] = (), invalid: Iterable[int] = (), no_id: Iterable[int] = ()):
    out: list[dict[str, object]] = []
    for i in range(count):
        row: dict[str, object] = {"user_id": None if i in set(no_id) else f"u{i}", "plan": f"p{i}"}
        if i in set(reserved):
            row["reserved"] = "x"
        if i in set(invalid):
            row["plan"] = "INVALID"
        out.append(row)
    return out


def source(records: Sequence[dict[str, object]]) -> Callable[[ResumePoint], Iterable[Item]]:
    return lambda point: from_records(records, "user_id", None, point.offset)


@pytest.fixture
def folder_path(tmp_path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/task")


def run_try(
    world: FakeVendor,
    folder: FailureFolder | ObjectStoragePath,
    checkpoint: CheckpointStore,
    records: Sequence[dict[str, object]],
    try_number: int,
    client: FakeClient | None = None,
    **engine_kwargs,
) -> TryOutcome:
    folder = folder if isinstance(folder, FailureFolder) else FailureFolder(folder)
    engine = SyncEngine(client or FakeClient(world), folder, try_number, chunk_size=CHUNK, **engine_kwargs)
    return engine.run(checkpoint, source(records))


def failure_lines(outcome: TryOutcome) -> list[dict]:
    return [dict(line) for line in read_lines(outcome.failure_file)]


# -- counting --------------------------------------------------------------------------------------------


def test_each_user_is_counted_once_across_tries_with_rejections_and_transient_failures(folder_path):
    # u1: the vendor rejects an attribute; u2: transient twice; u3: a rejection AND a transient failure;
    # u5: refused by the validator; u7: no user id.
    world = FakeVendor(transient={"u2": 2, "u3": 1})
    records = rows(10, reserved=[1, 3], invalid=[5], no_id=[7])
    checkpoint = MemoryCheckpoint()

    first = run_try(world, folder_path, checkpoint, records, 1)
    assert (first.total, first.succeeded, first.failed, first.retryable_users) == (10, 5, 5, 1)
    u3_transient = [line for line in failure_lines(first) if line["user_id"] == "u3" and line["retryable"]]
    assert u3_transient and all(line["counted"] for line in u3_transient)  # counted as failed already

    second = run_try(world, folder_path, checkpoint, records, 2)  # resends u2 (fails again) and u3 (delivered)
    assert (second.total, second.succeeded, second.failed, second.retryable_users) == (10, 5, 5, 1)
    assert second.resumed is not None and (second.resumed.offset, second.resumed.replayed_users) == (10, 2)

    third = run_try(world, folder_path, checkpoint, records, 3)
    assert (third.total, third.succeeded, third.failed, third.retryable_users) == (10, 6, 4, 0)
    assert checkpoint.text is None  # a clean finish clears the checkpoint
    assert world.sends == {f"u{i}": 1 for i in (0, 1, 4, 6, 8, 9)} | {"u2": 3, "u3": 2}
    assert world.stored["u3"] == {"plan": "p3"} and world.stored["u2"] == {"plan": "p2"}
    failed = {(line["user_id"], line["attribute"]) for line in failure_lines(third)}
    assert failed == {("u1", "reserved"), ("u3", "reserved"), ("u5", "plan"), (None, None)}


def test_a_user_postponed_by_the_quota_is_not_counted_until_a_later_try_sends_it(folder_path):
    world = FakeVendor(postponed={"u1": 1})
    checkpoint = MemoryCheckpoint()
    first = run_try(world, folder_path, checkpoint, rows(3), 1)
    assert (first.succeeded, first.failed, first.retryable_users) == (2, 1, 1) and "u1" not in world.stored
    second = run_try(world, folder_path, checkpoint, rows(3), 2)
    assert (second.total, second.succeeded, second.failed) == (3, 3, 0) and world.sends["u1"] == 1


def test_users_held_back_by_the_quota_go_first_after_the_pause_and_are_counted_once(folder_path):
    world = FakeVendor(postponed={"u1": 1, "u5": 1}, transient={"u6": 1}, not_before=1_900_000_000.0)
    records = rows(10, reserved=[5])
    checkpoint = MemoryCheckpoint()
    runs = []
    while True:  # as the operator does: defer whenever the engine paused for the quota, then resume
        outcome = run_try(world, folder_path, checkpoint, records, 1)
        runs.append(outcome)
        if not outcome.paused:
            break
    assert [o.paused for o in runs] == [True, True, False]  # the chunks of u1 and u5 each paused the try once
    assert [o.resume_at for o in runs] == [1_900_000_000.0, 1_900_000_000.0, None]
    final = runs[-1]
    # u5 is counted failed (a rejected attribute) once, though its other attribute went after the pause.
    assert (final.total, final.succeeded, final.failed, final.retryable_users) == (10, 8, 2, 1)
    assert final.pacing is not None and final.pacing.deferrals == 2
    assert world.stored["u1"] == {"plan": "p1"} and world.sends["u1"] == 1
    assert world.sends["u6"] == 1  # a transient failure waits for the next try, not for the resumption
    retried = run_try(world, folder_path, checkpoint, records, 2)
    assert (retried.total, retried.succeeded, retried.failed, retried.retryable_users) == (10, 9, 1, 0)


def test_a_failure_file_replayed_later_counts_its_users_afresh_and_only_once(folder_path, tmp_path):
    world = FakeVendor(transient={"u2": 1, "u3": 1})
    records = rows(6, reserved=[3])
    last_try = run_try(world, folder_path, MemoryCheckpoint(), records, 1)
    assert (last_try.failed, last_try.retryable_users) == (2, 1)  # u3 rejected (and transient), u2 transient

    def replay_run() -> TryOutcome:
        ledger = ReplayLedger(last_try.failure_file)
        delivered = ledger.delivered()
        engine = SyncEngine(
            FakeClient(world), FailureFolder(ObjectStoragePath(f"file://{tmp_path}/replay")), 1, ledger=ledger
        )
        return engine.run(
            MemoryCheckpoint(), lambda point: replay_items([last_try.failure_file], point.offset, exclude=delivered)
        )

    replayed = replay_run()
    # a new source: u3's "counted" lines belong to the run that wrote them
    assert (replayed.total, replayed.succeeded, replayed.failed) == (2, 2, 0)
    assert world.stored["u3"] == {"plan": "p3"}
    before = sum(world.sends.values())
    again = replay_run()
    assert again.total == 0 and sum(world.sends.values()) == before


# -- crashes ---------------------------------------------------------------------------------------------

CRASH_RECORDS = rows(12, reserved=[1, 5, 9])  # three chunks, each with a rejection and a transient failure
CRASH_TRANSIENT = {"u2": 1, "u6": 1, "u10": 1}
STEPS = ["before send", "mid send", "after send", "before parts", "between parts", "before checkpoint save"]


def crash_once(step: str, chunk: int, world: FakeVendor, path: ObjectStoragePath):
    """The client, folder and checkpoint of a first try that dies at ``step`` of chunk ``chunk``."""
    client, folder, checkpoint = FakeClient(world), FailureFolder(path), CrashingCheckpoint()
    if step in ("before send", "mid send", "after send"):
        client = FakeClient(
            world, crash_at_call=chunk, crash_after_results={"before send": 0, "mid send": 2}.get(step, 4)
        )
    elif step in ("before parts", "between parts"):
        folder = CrashingFolder(path, crash_at=2 * chunk + (step == "between parts"))  # 2 parts a chunk
    else:
        checkpoint = CrashingCheckpoint(crash_at=chunk)
    return client, folder, checkpoint


@pytest.mark.parametrize("chunk", [0, 1, 2])
@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_of_a_chunk_loses_no_user_and_resends_at_most_that_chunk(folder_path, step, chunk):
    world = FakeVendor(transient=dict(CRASH_TRANSIENT))
    client, folder, checkpoint = crash_once(step, chunk, world, folder_path)
    with pytest.raises(Crash):
        run_try(world, folder, checkpoint, CRASH_RECORDS, 1, client=client)

    final = run_try(world, folder_path, checkpoint, CRASH_RECORDS, 2)
    if final.retryable_users:  # transient failures the crashed try never reached: the next try resends them
        assert (final.total, final.failed) == (12, 3 + final.retryable_users)
        final = run_try(world, folder_path, checkpoint, CRASH_RECORDS, 3)

    assert (final.total, final.succeeded, final.failed, final.retryable_users) == (12, 9, 3, 0)
    assert world.stored == {f"u{i}": {"plan": f"p{i}"} for i in range(12)}
    needed = {f"u{i}": 2 if f"u{i}" in CRASH_TRANSIENT else 1 for i in range(12)}
    resent = {user for user, sends in world.sends.items() if sends > needed[user]}
    assert resent <= {f"u{i}" for i in range(chunk * CHUNK, (chunk + 1) * CHUNK)}, resent
    rejected = [(line["user_id"], line["attribute"]) for line in failure_lines(final)]
    assert sorted(rejected) == [("u1", "reserved"), ("u5", "reserved"), ("u9", "reserved")]  # each once


def test_a_crash_while_resending_earlier_transient_failures_is_resumed_by_the_next_try(folder_path):
    world = FakeVendor(transient={"u2": 1, "u6": 1})
    records = rows(8)
    checkpoint = CrashingCheckpoint()
    first = run_try(world, folder_path, checkpoint, records, 1)
    assert first.retryable_users == 2
    checkpoint.crash_at = checkpoint.saves  # the next save: after the replayed chunk was sent
    with pytest.raises(Crash):
        run_try(world, folder_path, checkpoint, records, 2)
    final = run_try(world, folder_path, checkpoint, records, 3)
    assert (final.total, final.succeeded, final.failed, final.retryable_users) == (8, 8, 0, 0)
    assert world.sends["u2"] == 3 and world.sends["u6"] == 3  # failed, delivered (lost by the crash), again


# -- stop and resume -----------------------------------------------------------------------------------


def test_pause_after_a_chunk_saves_the_state_and_resuming_continues_exactly(folder_path, tmp_path):
    records = rows(10, reserved=[3])
    reference_world = FakeVendor(transient={"u6": 1})
    reference = run_try(reference_world, ObjectStoragePath(f"file://{tmp_path}/ref"), MemoryCheckpoint(), records, 1)

    world = FakeVendor(transient={"u6": 1})
    checkpoint = MemoryCheckpoint()
    runs = 0
    while True:
        runs += 1
        outcome = run_try(world, folder_path, checkpoint, records, 1, should_pause=lambda: True)
        if not outcome.paused:
            break
        assert checkpoint.text is not None
    assert runs == 4  # three chunks, each followed by a pause, then a run that finds nothing left
    assert (outcome.total, outcome.succeeded, outcome.failed, outcome.retryable_users) == (
        reference.total,
        reference.succeeded,
        reference.failed,
        reference.retryable_users,
    )
    assert world.sends == reference_world.sends  # a resumption of the same try resends nothing
    assert sorted(map(str, failure_lines(outcome))) == sorted(map(str, failure_lines(reference)))
    retried = run_try(world, folder_path, checkpoint, records, 2)  # a new try does resend the transient one
    assert (retried.succeeded, retried.retryable_users, world.sends["u6"]) == (9, 0, 2)


# -- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_validates_counts_and_previews_without_sending(folder_path):
    world = FakeVendor()
    client = FakeClient(world)
    records = rows(14, invalid=[2], no_id=[4])
    outcome = SyncEngine(client, FailureFolder(folder_path), 1, chunk_size=CHUNK).dry_run(
        source(records)(ResumePoint())
    )
    assert outcome.dry_run is not None
    assert (outcome.total, outcome.succeeded, outcome.failed, outcome.dry_run.would_send) == (14, 12, 2, 12)
    assert len(outcome.dry_run.preview) == 10 and outcome.dry_run.preview[0].attributes == {"plan": "p0"}
    assert client.calls == 0 and client.requests_sent == 0 and not world.sends and outcome.requests_sent == 0
    assert outcome.failure_file.endswith("dry-run-failures.jsonl") and len(failure_lines(outcome)) == 2
