"""``null_values`` and the checks of both data-safety parameters, in a real Airflow (``dag.test()``) against the
sandbox. The incremental side (the state, ``max_removals``) is in test_incremental.py."""

from __future__ import annotations

import pytest

from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from tests.conftest import VENDOR_USERS
from tests.operators.test_operators import USER_ID_FIELD, key, users_of

pytestmark = pytest.mark.integration


def push(vendor: str, records: list[dict], options: str = "") -> str:
    return f"""
    UpdateUserAttributesOperator(task_id="push", conn_id="{vendor}_default", user_id_field="{USER_ID_FIELD[vendor]}",
                                 records={records!r}, {options})
    """


def held(attributes: dict) -> dict[str, str]:
    """What a vendor holds, as text (DX keeps text; a cleared User.com attribute is None)."""
    return {name: str(value) for name, value in attributes.items() if value is not None}


@pytest.mark.parametrize("vendor", ["dx", "fyno", "usercom"])  # AltaTech cannot remove: it always skips
def test_skip_never_sends_a_null_and_counts_each_user_once_while_clear_removes(dag_harness, sandbox, vendor):
    field, user = USER_ID_FIELD[vendor], VENDOR_USERS[vendor]
    first = [{field: user(i), "plan": "pro", "score": i} for i in range(2)]
    dag_harness.run(f"nulls_{vendor}", push(vendor, first))
    before = sandbox.stats()["requests"]["total"]
    nulls = [
        {field: user(0), "plan": None, "score": 7},
        {field: user(1), "plan": None, "score": None},  # every attribute NULL: nothing to send
        {field: user(2), "plan": None, "score": None},
    ]
    skipped = dag_harness.run(f"nulls_{vendor}", push(vendor, nulls, 'null_values="skip"'))
    report = skipped.xcom("push")
    assert (report["total"], report["succeeded"], report["failed"], report["skipped_attributes"]) == (3, 3, 0, 5)
    assert report["requests_sent"] == 1 == sandbox.stats()["requests"]["total"] - before  # user 0's score only
    users = users_of(sandbox, vendor)
    assert held(users[key(vendor, user(0))]) == {"plan": "pro", "score": "7"}
    assert held(users[key(vendor, user(1))]) == {"plan": "pro", "score": "1"}  # the vendor kept both
    # the default, "clear", sends them as the vendor's removal
    dag_harness.run(f"nulls_{vendor}", push(vendor, nulls[:2], 'null_values="clear"'))
    assert held(users_of(sandbox, vendor)[key(vendor, user(1))]) == {}


def test_skip_is_templated_and_a_mass_update_to_null_sends_nothing(dag_harness, sandbox):
    ids = [f"m{i}@example.com" for i in range(5)]
    body = f"""
    MassUpdateOperator(task_id="flag", conn_id="dx_default", attribute="churn", value=None, user_ids={ids!r},
                       null_values="{{{{ dag_run.conf.get('nulls', 'clear') }}}}")
    """
    report = dag_harness.run("nulls_mass", body, conf={"nulls": "Skip"}).xcom("flag")
    assert (report["total"], report["succeeded"], report["skipped_attributes"], report["requests_sent"]) == (5, 5, 5, 0)
    assert sandbox.stats()["requests"]["total"] == 0


def test_an_unreadable_rendered_value_fails_the_task_at_once(dag_harness, sandbox):
    body = """
    UpdateUserAttributesOperator(task_id="nulls", conn_id="dx_default", user_id_field="email", retries=2,
                                 records=[{"email": "a@example.com", "plan": None}],
                                 null_values="{{ dag_run.conf['nulls'] }}")
    UpdateUserAttributesOperator(task_id="limit", conn_id="dx_default", user_id_field="email", retries=2,
                                 records=[{"email": "a@example.com", "plan": None}], incremental=True,
                                 max_removals="{{ dag_run.conf['limit'] }}")
    """
    result = dag_harness.run("bad_values", body, conf={"nulls": "drop", "limit": "lots"})
    assert result.tasks[("nulls", -1)][:2] == ("failed", 1)  # AirflowFailException: no retry
    assert result.tasks[("limit", -1)][:2] == ("failed", 1)
    assert sandbox.stats()["requests"]["total"] == 0


def test_values_given_as_they_are_are_checked_when_the_dag_is_parsed():
    common = {"conn_id": "dx_default", "records": [{"user_id": "a"}]}
    with pytest.raises(AirflowFailException, match=r"null_values must be 'clear' or 'skip', got 'drop'"):
        UpdateUserAttributesOperator(task_id="a", null_values="drop", **common)
    with pytest.raises(AirflowFailException, match=r"max_removals must be a count .*; got 1.5"):
        UpdateUserAttributesOperator(task_id="b", incremental=True, max_removals=1.5, **common)
    with pytest.raises(AirflowFailException, match=r"max_removals=0.05 needs incremental=True"):
        MassUpdateOperator(task_id="c", conn_id="dx_default", attribute="x", value=1, user_ids=["a"], max_removals=0.05)
    templated = UpdateUserAttributesOperator(task_id="d", null_values="{{ params.nulls }}", **common)
    assert {"null_values", "max_removals"} <= set(templated.template_fields)
    assert UpdateUserAttributesOperator(task_id="e", **common).null_values == "clear"  # the default
