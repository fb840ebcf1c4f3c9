"""The checkpoint's schema: version 2 round-trips, version 1 (provider 0.x) is converted, others refused."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.checkpoint import (
    VERSION,
    CheckpointError,
    MemoryCheckpoint,
    ObjectStorageCheckpoint,
    PacingTotals,
    ReplayQueue,
    SyncState,
    TransientPart,
)
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.keyset import row_digest
from airflow_provider_userattrs.sync.sources import from_records
from airflow_provider_userattrs.sync.storage import FailureFolder
from tests.sync.fakes import FakeClient, FakeVendor

VERSION_1 = {  # what 0.x's _fresh_state() grew into after a try; an old one has no "skipped"
    "version": 1,
    "offset": 10,
    "succeeded": 7,
    "failed": 2,
    "final_parts": ["file:///f/parts/try1-000000-rejected.jsonl"],
    "replay": {"parts": ["file:///f/parts/try1-000001-transient.jsonl"], "pos": 3},
    "retry_parts": [{"path": "file:///f/parts/try2-001000-transient.jsonl", "uncounted": 1}],
    "requests_sent": 12,
}


def test_version_4_round_trips():
    state = SyncState(
        offset=5,
        resume_key="u-17",
        resume_at_key=["0f3a", "99b1"],
        succeeded=3,
        failed=1,
        skipped=2,
        rejected_parts=["a"],
        transient_parts=[TransientPart("b", 1)],
        postponed_parts=[TransientPart("d", 2)],
        replay=ReplayQueue(["c"], 2),
        requests_sent=9,
        chunks=4,
        try_number=3,
        pacing=PacingTotals(deferrals=2, waited_seconds=1.5, throttled_requests=4),
        paused=True,
    )
    document = json.loads(json.dumps(state.to_json()))
    assert document["version"] == VERSION == 4
    assert SyncState.from_json(document, "test") == state


def test_a_version_3_checkpoint_resumes_its_sql_source_by_position_as_it_was_written():
    document = {**SyncState(offset=5, try_number=2).to_json(), "version": 3}
    for key in ("resume_key", "resume_at_key", "keyed"):
        del document[key]
    point = SyncState.from_json(document, "test").resume_point()
    assert (point.offset, point.key, point.keyed) == (5, None, False)
    fresh = SyncState.from_json({**document, "offset": 0}, "test").resume_point()
    assert fresh.keyed  # nothing settled yet: by key from the start


def test_the_resume_point_follows_the_last_settled_id_and_its_duplicates_across_chunks():
    state = SyncState()
    rows = [{"id": i, "n": n} for i, n in [(None, 0), ("a", 1), ("b", 2), ("b", 3), ("b", 4), ("b", 5), ("c", 6)]]
    state.settled([(r["id"], r) for r in rows[:4]])
    assert (state.offset, state.resume_key, state.resume_at_key) == (4, "b", [row_digest(rows[2]), row_digest(rows[3])])
    state.settled([(r["id"], r) for r in rows[4:6]])  # the same id straddles the chunk boundary
    assert (state.offset, state.resume_key, len(state.resume_at_key)) == (6, "b", 4)
    state.settled([(r["id"], r) for r in rows[6:]])
    assert (state.offset, state.resume_key, state.resume_at_key) == (7, "c", [row_digest(rows[6])])


def test_version_2_is_read_with_nothing_postponed_and_no_pacing():
    document = SyncState(offset=5, transient_parts=[TransientPart("b", 1)], try_number=2).to_json()
    for key in ("postponed_parts", "pacing", "paused"):
        del document[key]
    state = SyncState.from_json({**document, "version": 2}, "test")
    assert state.offset == 5 and state.transient_parts == [TransientPart("b", 1)]
    assert state.postponed_parts == [] and state.pacing == PacingTotals() and not state.paused


def test_a_resumption_after_a_pause_resends_what_the_quota_held_back_but_not_the_transient_failures():
    state = SyncState(transient_parts=[TransientPart("t", 1)], postponed_parts=[TransientPart("p", 2)], try_number=1)
    state.pause(2.5)
    state.begin(1)
    assert state.replay.parts == ["p"] and state.transient_parts == [TransientPart("t", 1)]
    assert (state.pacing.deferrals, state.pacing.worker_seconds) == (1, 2.5) and not state.paused


def test_version_1_is_converted():
    state = SyncState.from_json(VERSION_1, "test")
    assert (state.offset, state.succeeded, state.failed, state.skipped, state.requests_sent) == (10, 7, 2, 0, 12)
    assert state.rejected_parts == VERSION_1["final_parts"]
    assert state.transient_parts == [TransientPart("file:///f/parts/try2-001000-transient.jsonl", 1)]
    assert state.replay == ReplayQueue(["file:///f/parts/try1-000001-transient.jsonl"], 3)
    assert state.try_number == 0 and state.pending == 1
    state.begin(3)  # any try reading it is a retried try: it resends the transient parts after the replay
    assert state.replay.parts[-1] == "file:///f/parts/try2-001000-transient.jsonl" and not state.transient_parts


def test_a_version_1_checkpoint_left_by_a_crashed_try_is_resumed(tmp_path):
    records = [{"user_id": f"u{i}", "plan": "p"} for i in range(6)]
    world = FakeVendor(transient={"u2": 1})
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    first = SyncEngine(FakeClient(world), folder, 1, chunk_size=4).run(
        MemoryCheckpoint(), lambda point: from_records(records, "user_id", None, point.offset)
    )
    assert first.retryable_users == 1
    transient = [str(p) for p in (folder.path / "parts").iterdir() if "transient" in str(p)]
    old = {
        "version": 1,
        "offset": 6,
        "succeeded": 5,
        "failed": 0,
        "final_parts": [],
        "replay": {"parts": [], "pos": 0},
        "retry_parts": [{"path": transient[0], "uncounted": 1}],
        "requests_sent": 6,
    }
    final = SyncEngine(FakeClient(world), folder, 2, chunk_size=4).run(
        MemoryCheckpoint(old), lambda point: from_records(records, "user_id", None, point.offset)
    )
    assert (final.total, final.succeeded, final.failed, final.retryable_users) == (6, 6, 0, 0)
    assert world.sends["u2"] == 2 and world.sends["u0"] == 1


@pytest.mark.parametrize("version", [5, None, "2"])
def test_an_unknown_version_is_refused_naming_the_checkpoint_and_what_to_do(tmp_path, version):
    folder = ObjectStoragePath(f"file://{tmp_path}/task")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint.json").write_text(json.dumps({"version": version, "offset": 1}))
    with pytest.raises(CheckpointError) as error:
        ObjectStorageCheckpoint(folder).load()
    message = str(error.value)
    assert f"{tmp_path}/task/checkpoint.json" in message and "Clear the task" in message
    assert repr(version) in message
