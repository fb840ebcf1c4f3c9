"""Whatever a vendor answers, the parsers end in an outcome or a clear error naming vendor and status."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3 import HTTPHeaderDict

from airflow_provider_userattrs.client.calls import Entry
from airflow_provider_userattrs.client.delivery import Delivery
from airflow_provider_userattrs.client.transport import HttpResponse
from airflow_provider_userattrs.errors import CallRejected, VendorAuthError, VendorEndpointError, VendorResponseError

USERS = {"altatech": "u1", "fyno": "d1", "dx": "a@example.com", "usercom": 7}
EXTRA = {"fyno": {"workspace_id": "sandboxwsid"}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "ok": st.booleans() | st.none() | st.text(max_size=3),
        "error": json_values,
        "user": json_values,
        "success_update": json_values,
        "fail_update": json_values,
        "results": json_values,
        "status": json_values,
        "_message": json_values,
        "code": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()[:-3]),  # truncated JSON
    st.just(b"<html><body>502 Bad Gateway</body></html>"),
    st.just(b""),
)


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "dx", "usercom"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 500, 501]), body=bodies)
def test_any_answer_becomes_outcomes_or_a_clear_error(make_client, vendor, status, body):
    client = make_client(vendor, **EXTRA.get(vendor, {}))
    entries = [Entry(0, USERS[vendor], {"plan": "pro", "score": 3})]
    (call, *_) = client.vendor.plan(entries, client.settings)
    response = HttpResponse(status, HTTPHeaderDict({"Content-Type": "application/json"}), body)
    label = client.vendor.label
    try:
        outcomes = Delivery(client.vendor, client.sender, client.name).read(call, response)
    except VendorAuthError as exc:
        assert label in str(exc)
    except (CallRejected, VendorEndpointError, VendorResponseError) as exc:
        assert label in str(exc) and str(status) in str(exc), str(exc)
    else:
        assert outcomes, "an answer must settle the call's attributes"
        names = sorted(r.attribute for _, r in outcomes if r.user_id == USERS[vendor])
        assert names == ["plan", "score"]
