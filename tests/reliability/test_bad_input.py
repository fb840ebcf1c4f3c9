"""Bad input, per vendor, against the sandbox: every (user, attribute) gets one outcome, rejections say why,
the rest of the batch is delivered, nothing crashes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.results import Outcome, UserUpdate

pytestmark = pytest.mark.integration

GOOD_ID = {
    "altatech": lambda i: f"u{i}",
    "fyno": lambda i: f"d{i}",
    "dx": lambda i: f"p{i}@example.com",
    "usercom": lambda i: i + 1,
}
BAD_IDS = {
    "altatech": st.sampled_from(["x" * 33, "", None, 1.5, True]),
    "fyno": st.sampled_from(["x" * 300, "", None, 2.5, ["a"]]),
    "dx": st.sampled_from(["not-an-email", "a@b", "", None, 42, "two@@example.com"]),
    "usercom": st.sampled_from(["abc", -3, 0, 1.5, None, "12x", True]),
}
values = st.one_of(
    st.text(max_size=300),  # unicode, emoji, over-long
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["2024-13-45", "2023-02-30", "2020-10-01T18:30:00.000+05:30", "2020-10-01", "2021-06-00"]),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.text(max_size=5) | st.integers(), max_size=3),
    st.binary(max_size=5),
)
names = st.text(min_size=0, max_size=260)


@pytest.fixture
def hooks(sandbox, monkeypatch):
    made = {}
    for vendor in GOOD_ID:
        conn = {"conn_type": vendor, "host": sandbox.url, "password": "sandbox-token"}
        if vendor == "fyno":
            conn["extra"] = {"workspace_id": "sandboxwsid"}
        monkeypatch.setenv(f"AIRFLOW_CONN_BAD_{vendor.upper()}", json.dumps(conn))
        made[vendor] = get_hook(f"bad_{vendor}", concurrency=4, batch_size=7, mass_update_chunk_size=5, max_attempts=2)
    return made


def _settled(result, update: UserUpdate) -> None:
    by_name: dict[str, list] = {}
    for item in result.results:
        by_name.setdefault(item.attribute, []).append(item)
    assert set(by_name) == set(update.attributes), (by_name, update)
    for items in by_name.values():
        assert len(items) == 1, items
        item = items[0]
        assert item.outcome is not Outcome.FAILED, item  # no faults: nothing may end transient
        if item.outcome is Outcome.REJECTED:
            assert item.reason and len(item.reason) < 2000


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_values_and_ids_are_reported_per_attribute_and_the_rest_delivered(hooks, sandbox, vendor, data):
    hook = hooks[vendor]
    updates = []
    for i in range(data.draw(st.integers(min_value=1, max_value=12))):
        user_id = data.draw(BAD_IDS[vendor]) if data.draw(st.booleans()) else GOOD_ID[vendor](i % 6)
        attributes = data.draw(st.dictionaries(names, values, max_size=4))
        attributes["ok_attribute"] = f"fine-{i}"
        sandbox.declare_usercom_attributes(attributes)  # User.com custom attributes must exist in the app
        updates.append(UserUpdate(user_id, attributes))
    tagged = list(hook.update_users(UserUpdate(u.user_id, u.attributes, ref=n) for n, u in enumerate(updates)))
    assert sorted(r.ref for r in tagged) == list(range(len(updates)))  # one result per input, none lost
    for result in tagged:
        update = updates[result.ref]
        _settled(result, update)
        ok = next(r for r in result.results if r.attribute == "ok_attribute")
        good = [GOOD_ID[vendor](k) for k in range(6)]
        user_is_valid = any(type(update.user_id) is type(g) and update.user_id == g for g in good)
        if user_is_valid:
            assert ok.outcome is Outcome.DELIVERED, (ok, update)
        else:
            assert ok.outcome is Outcome.REJECTED and ok.reason


def test_nan_infinity_nested_huge_and_null_semantics(hooks, sandbox):
    huge = "x" * (10 * 1024 * 1024)
    for vendor, hook in hooks.items():
        user = GOOD_ID[vendor](1)
        result = hook.update_user(
            user, {"nan": math.nan, "inf": math.inf, "nested": {"a": 1}, "huge": huge, "fine": "yes", "gone": None}
        )
        outcomes = {r.attribute: r.outcome for r in result.results}
        assert outcomes["nan"] is outcomes["inf"] is outcomes["nested"] is Outcome.REJECTED, vendor
        assert outcomes["huge"] is Outcome.REJECTED and outcomes["fine"] is Outcome.DELIVERED, vendor
        # NULL: DX and Fyno remove, User.com clears, AltaTech cannot remove (skipped, reported)
        expected_null = Outcome.SKIPPED if vendor == "altatech" else Outcome.DELIVERED
        assert outcomes["gone"] is expected_null, vendor
        huge_reason = next(r.reason for r in result.results if r.attribute == "huge")
        assert len(huge_reason) < 2000  # the reason names the rule, it does not carry 10 MB
    assert sandbox.state("dx")[GOOD_ID["dx"](1)] == {"fine": "yes"}


def test_same_user_twice_in_one_batch_last_record_wins(hooks, sandbox):
    for vendor, hook in hooks.items():
        user = GOOD_ID[vendor](3)
        updates = [UserUpdate(user, {"tier": "first"}), UserUpdate(user, {"tier": "second"})]
        assert all(r.ok for r in hook.update_users(updates))
        state = sandbox.state(vendor)
        state = state["sandboxwsid/live"] if vendor == "fyno" else state
        assert state[str(user) if vendor == "usercom" else user]["tier"] == "second", vendor
