"""The incremental path of the engine over the object-storage state: one interface, leavers numbered by it;
its removal counts (``max_removals``) and ``null_values="skip"``."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.incremental import (
    IncrementalState,
    ObjectState,
    RemovalCounts,
    RemovalLimit,
    RemovalLimitExceeded,
    Segment,
    check_removals,
)
from airflow_provider_userattrs.sync.nulls import SkippingNulls
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


def two_attributes(users: range, nulls: range = range(0)) -> Segment:
    records = [{"user_id": f"u{i}", "plan": None if i in nulls else "pro", "tier": "gold"} for i in users]
    return Segment("user_id", None, lambda: records)


def test_the_object_state_counts_removals_over_the_computed_difference(tmp_path):
    world = FakeVendor()
    run(tmp_path, world, two_attributes(range(10)))
    state = ObjectState(f"file://{tmp_path}", "crm")
    assert state.size() == (10, 20)
    moved = two_attributes(range(6), nulls=range(2))  # u0, u1 lose their plan; u6..u9 leave
    assert state.removal_counts(moved, remove_missing=True) == RemovalCounts(2, 4, 8, 10, 20)
    assert state.removal_counts(moved, remove_missing=False) == RemovalCounts(2, 0, 0, 10, 20)
    skipping = dataclasses.replace(moved, skip_nulls=True)
    assert state.removal_counts(skipping, remove_missing=True) == RemovalCounts(0, 4, 8, 10, 20)
    assert sum(world.sends.values()) == 10  # counting sent nothing
    with pytest.raises(RemovalLimitExceeded, match=r"clear 2 attributes .*remove 4 users \(40.0% of the 10 users"):
        check_removals(state, moved, RemovalLimit(0.25), remove_missing=True, log=logging.getLogger())


def test_skipped_nulls_leave_the_object_state_as_delivered_and_each_user_is_counted_once(tmp_path):
    world = FakeVendor()
    run(tmp_path, world, two_attributes(range(4)))
    records = [
        {"user_id": "u0", "plan": None, "tier": None},  # every attribute NULL: nothing to send, still counted
        {"user_id": "u1", "plan": None, "tier": "silver"},
        {"user_id": "u2", "plan": "pro", "tier": "gold"},
    ]  # u3 left
    segment = Segment("user_id", None, lambda: records, skip_nulls=True)
    folder = FailureFolder(ObjectStoragePath(f"file://{tmp_path}/task"))
    with ObjectState(f"file://{tmp_path}", "crm") as state:
        client = SkippingNulls(FakeClient(world), logging.getLogger(__name__))
        outcome = SyncEngine(client, folder, 1, chunk_size=3).run_incremental(
            state, segment, full_refresh=False, remove_missing=True
        )
    assert outcome.incremental is not None
    assert (outcome.incremental.changed_users, outcome.incremental.removed_users) == (2, 1)
    assert (outcome.total, outcome.succeeded, outcome.skipped_attributes) == (3, 3, 3)  # u0, u1, the leaver u3
    assert world.stored["u0"] == {"plan": "pro", "tier": "gold"} and world.sends["u0"] == 1  # not sent again
    assert world.stored["u1"] == {"plan": "pro", "tier": "silver"}  # only the value went
    assert world.stored["u3"] == {"plan": None, "tier": None}  # a leaver is an explicit removal: sent
    values = ObjectState(f"file://{tmp_path}", "crm").values
    assert values["u0"] == {"plan": '"pro"', "tier": '"gold"'} and values["u1"]["plan"] == '"pro"'
    assert "u3" not in values
