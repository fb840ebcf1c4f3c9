"""The client's face: ``connect`` checks what it is given, and a wait too long comes back as a value."""

from __future__ import annotations

import json

import pytest

from airflow_provider_userattrs.client import VENDORS, connect
from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.results import Outcome, UserUpdate
from tests.client.fakes import TOKEN

DX_URL = "http://127.0.0.1:9/users.attributes.update"


def test_connect_knows_the_four_vendors_and_refuses_others():
    assert sorted(VENDORS) == ["altatech", "dx", "fyno", "usercom"]
    with pytest.raises(ConnectionConfigError, match=r"'hubspot' is not a user-attributes vendor"):
        connect("hubspot", token=TOKEN)


@pytest.mark.parametrize(
    ("vendor", "settings", "message"),
    [
        ("dx", {"concurrency": "lots"}, r"'concurrency' must be a whole number from 1 to 256, got 'lots'"),
        ("fyno", {}, r"needs the extra workspace_id"),
        ("usercom", {}, r"needs a host \(the API base URL, e\.g\. https://<app_subdomain>\.user\.com\)"),
        ("dx", {"quota_requests": 10}, r"a quota needs both quota_requests and quota_window_seconds"),
        ("dx", {"bogus": 1}, r"unknown setting\(s\) 'bogus'"),
    ],
)
def test_settings_are_checked_as_the_connection_extras_are(vendor, settings, message):
    base_url = None if vendor == "usercom" else "http://127.0.0.1:9"
    with pytest.raises(ConnectionConfigError, match=message):
        connect(vendor, base_url=base_url, token=TOKEN, **settings)


def test_a_missing_token_names_the_client():
    with pytest.raises(ConnectionConfigError, match=r"DX connection 'crm' has no API token"):
        connect("dx", token="", name="connection 'crm'")


def test_a_wait_too_long_for_the_caller_comes_back_postponed_with_the_time_it_may_go(make_client, fake, clock):
    fake.post(DX_URL, status=429, json={"ok": False, "error": "rate_limited"}, headers={"Retry-After": "120"})
    client = make_client("dx", concurrency=1, defer_after=60)
    deferring = type(client)(client.vendor, client.sender, client.settings, name=client.name)
    deferring.sender.defer_long_waits = True  # as connect(..., defer_long_waits=True) builds it
    (result,) = deferring.update_users([UserUpdate("a@example.com", {"plan": "pro"})])
    assert result.postponed and not result.ok
    assert [r.outcome for r in result.results] == [Outcome.POSTPONED]
    assert result.not_before == pytest.approx(clock.time() + 120)
    assert len(fake.calls) == 1  # not slept, not retried: the caller decides when to come back


def test_a_client_that_may_not_defer_sleeps_through_the_same_wait(make_client, fake, clock):
    fake.post(DX_URL, status=429, json={"ok": False, "error": "rate_limited"}, headers={"Retry-After": "120"})
    fake.post(DX_URL, json={"ok": True, "user": {"attributes": [{"name": "plan", "updated": True}]}})
    client = make_client("dx", concurrency=1, defer_after=60)
    (result,) = client.update_users([UserUpdate("a@example.com", {"plan": "pro"})])
    assert result.ok and result.not_before is None
    assert sum(clock.sleeps) >= 120 and client.stats().throttled_requests == 1
    assert json.loads(fake.calls[-1].request.body)["email"] == "a@example.com"
