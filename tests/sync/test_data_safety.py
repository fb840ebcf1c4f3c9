"""``null_values="skip"`` (the client that never sends a NULL) and how ``max_removals`` is read, without Airflow
running a task. The warehouses' counting is in test_warehouses.py, the object state's in
test_incremental_state.py, real runs in tests/operators/test_data_safety.py and test_incremental.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from decimal import Decimal

import pytest

from airflow_provider_userattrs.results import Outcome, UserResult, UserUpdate
from airflow_provider_userattrs.sync.incremental import RemovalCounts, RemovalLimit
from airflow_provider_userattrs.sync.nulls import SKIPPED_NULL_REASON, Removal, SkippingNulls, without_nulls
from tests.sync.fakes import FakeClient, FakeVendor


class AnswersLastFirst(FakeClient):
    """A client that answers a batch in reverse order of the updates (as a concurrent client may): the answer
    depends on the input only."""

    def update_users(self, updates: Iterable[UserUpdate]) -> Iterator[UserResult]:
        yield from reversed(list(super().update_users(updates)))


def test_skip_leaves_nulls_out_answers_them_skipped_and_hands_each_result_its_own_ref():
    world = FakeVendor()
    client = SkippingNulls(AnswersLastFirst(world), logging.getLogger(__name__))
    updates = [
        UserUpdate("a", {"plan": None, "tier": "gold"}, ref="ref-a"),
        UserUpdate("b", {"plan": None, "tier": None}, ref="ref-b"),  # nothing left to send
        UserUpdate("c", {"plan": "pro"}, ref="ref-c"),
        UserUpdate("d", Removal.fromkeys(["plan"]), ref="ref-d"),  # a leaver: an explicit removal
    ]
    results = {result.ref: result for result in client.update_users(updates)}
    assert set(results) == {"ref-a", "ref-b", "ref-c", "ref-d"}
    outcomes = {ref: {(r.attribute, r.outcome, r.reason) for r in result.results} for ref, result in results.items()}
    skipped = Outcome.SKIPPED
    assert outcomes["ref-a"] == {("plan", skipped, SKIPPED_NULL_REASON), ("tier", Outcome.DELIVERED, None)}
    assert outcomes["ref-b"] == {("plan", skipped, SKIPPED_NULL_REASON), ("tier", skipped, SKIPPED_NULL_REASON)}
    assert results["ref-b"].ok and results["ref-b"].user_id == "b"
    assert world.stored == {"a": {"tier": "gold"}, "c": {"plan": "pro"}, "d": {"plan": None}}
    assert client.stats().requests_sent == 3  # b took no request


def test_skip_in_a_dry_run_shows_the_nulls_skipped_and_sends_nothing():
    client = SkippingNulls(FakeClient(FakeVendor()), logging.getLogger(__name__))
    sendable, results = client.validate(UserUpdate("a", {"plan": None, "tier": "INVALID", "seats": 3}))
    assert sendable == UserUpdate("a", {"seats": 3})
    assert {(r.attribute, r.outcome) for r in results} == {("tier", Outcome.REJECTED), ("plan", Outcome.SKIPPED)}
    nothing, only_skipped = client.validate(UserUpdate("b", {"plan": None}))
    assert nothing is None and [r.outcome for r in only_skipped] == [Outcome.SKIPPED]


def test_without_nulls_keeps_an_update_without_null_and_a_removal_as_they_are():
    plain = UserUpdate("a", {"plan": "pro"})
    assert without_nulls(plain) == (plain, [])
    removal = UserUpdate("a", Removal.fromkeys(["plan", "tier"]))
    assert without_nulls(removal) == (removal, [])
    assert without_nulls(UserUpdate("a", {"plan": None, "n": 0, "f": False})) == (
        UserUpdate("a", {"n": 0, "f": False}),
        ["plan"],
    )  # only None is a NULL: 0 and False are values


@pytest.mark.parametrize(
    ("given", "value", "is_ratio"),
    [
        (500, 500, False),
        ("500", 500, False),
        (500.0, 500, False),  # a whole number of 1 or more is a count
        (1, 1, False),
        (1.0, 1, False),
        (0, 0, False),  # no removal at all
        ("0", 0, False),
        (0.05, 0.05, True),  # below 1: a ratio
        (" 0.05 ", 0.05, True),  # a rendered template
        (Decimal("0.25"), 0.25, True),
    ],
)
def test_max_removals_below_one_is_a_ratio_and_from_one_a_count(given, value, is_ratio):
    limit = RemovalLimit.parse(given)
    assert limit is not None and limit.value == value and isinstance(limit.value, float) is is_ratio
    assert limit.is_ratio is is_ratio


@pytest.mark.parametrize("given", [None, "", "None", "none"])
def test_max_removals_none_or_rendered_none_is_no_limit(given):
    assert RemovalLimit.parse(given) is None


@pytest.mark.parametrize("given", [1.5, -1, -0.5, "abc", True, float("nan"), float("inf"), "1e400", [5]])
def test_max_removals_that_is_neither_a_count_nor_a_ratio_is_refused(given):
    with pytest.raises(ValueError, match=r"max_removals must be a count .*, a ratio .*or None.*; got"):
        RemovalLimit.parse(given)


def test_a_count_limits_each_number_and_a_ratio_is_of_what_the_state_holds():
    counts = RemovalCounts(cleared=40, removed_users=12, removed_attributes=36, state_users=400, state_attributes=1200)
    assert not RemovalLimit(40).exceeded_by(counts)
    assert RemovalLimit(39).exceeded_by(counts)  # 40 attributes cleared
    assert RemovalLimit(11).exceeded_by(RemovalCounts(0, 12, 36, 400, 1200))  # 12 users removed
    assert not RemovalLimit(0.05).exceeded_by(counts)  # 3.3 % of the attributes, 3 % of the users
    assert RemovalLimit(0.03).exceeded_by(counts)  # 3.3 % > 3 %
    assert RemovalLimit(0).exceeded_by(RemovalCounts(1, 0, 0, 400, 1200))
    assert not RemovalLimit(0).exceeded_by(RemovalCounts(0, 0, 0, 400, 1200))
    message = RemovalLimit(0.03).refusal(counts)
    assert message.startswith("max_removals=0.03: this sync would clear 40 attributes (3.3% of the 1,200")
    assert "remove 12 users (3.0% of the 400 users" in message and "nothing was sent" in message
