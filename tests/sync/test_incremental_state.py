"""The incremental path of the engine over the object-storage state: one interface, leavers numbered by it."""

from __future__ import annotations

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import IncrementalState, ObjectState, Segment
from airflow_provider_userattrs.sync.storage import FailureFolder
from tests.sync.fakes import Crash, FakeClient, FakeVendor


def segment(users: range, plan: str = "pro") -> Segment:
    records = [{"user_id": f"u{i}", "plan": plan} for i in users]
    return Segment("user_id", None, lambda: records)


def run(tmp_path, world: FakeVendor, seg: Segment, try_number: int = 1, state: IncrementalState | None = None):
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    with state or ObjectState(f"file://{tmp_path}", "crm") as current:
        engine = SyncEngine(FakeClient(world), folder, try_number, chunk_size=3)
        return engine.run_incremental(current, seg, full_refresh=False, remove_missing=True)


def test_only_changes_go_and_leavers_are_numbered_after_the_changes(tmp_path):
    world = FakeVendor()
    first = run(tmp_path, world, segment(range(5)))
    assert first.incremental is not None and first.incremental.changed_users == 5
    assert run(tmp_path, world, segment(range(5))).total == 0  # nothing changed: nothing sent
    state = ObjectState(f"file://{tmp_path}", "crm")
    items = list(state.items(segment(range(2, 8), plan="pro"), full_refresh=False, remove_missing=True))
    positions = [item.position for item in items]
    assert [i.update.user_id for i in items if i.update] == ["u5", "u6", "u7", "u0", "u1"]
    assert len(set(positions)) == len(positions) and positions[-2:] == [6, 7]  # leavers after the last change
    moved = run(tmp_path, world, segment(range(2, 8)))
    assert moved.incremental is not None
    assert (moved.incremental.changed_users, moved.incremental.removed_users) == (3, 2)
    assert world.stored["u0"] == {"plan": None} and world.stored["u7"] == {"plan": "pro"}


def test_a_crash_before_the_state_is_written_resends_the_chunk_never_skips_it(tmp_path):
    class DiesOnSecondRecord(ObjectState):
        calls = 0

        def record(self, updates):
            DiesOnSecondRecord.calls += 1
            if DiesOnSecondRecord.calls == 2:
                raise Crash("died between delivery and state write")
            super().record(updates)

    world = FakeVendor()
    with pytest.raises(Crash):
        run(tmp_path, world, segment(range(9)), state=DiesOnSecondRecord(f"file://{tmp_path}", "crm"))
    retried = run(tmp_path, world, segment(range(9)), try_number=2)
    assert retried.incremental is not None and retried.incremental.changed_users == 6  # chunks 2 and 3
    assert {user: n for user, n in world.sends.items() if n > 1} == {"u3": 2, "u4": 2, "u5": 2}
