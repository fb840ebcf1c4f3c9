"""Which quota a client paces to (issue 24): the connection's, else the vendor's published one on its own API."""

from __future__ import annotations

import logging
import uuid

import pytest

from airflow_provider_userattrs.client import build, connect, declared_quota, vendor_api
from airflow_provider_userattrs.client.pacing import Quota
from airflow_provider_userattrs.client.shared_quota import RedisQuota
from airflow_provider_userattrs.config import parse_settings
from airflow_provider_userattrs.errors import ConnectionConfigError
from tests.client.fakes import TOKEN, FakeClock, FakeTransport

DX_API = "https://api.getdx.com"


def quota_of(vendor: str, base_url: str | None = None, **settings: object) -> Quota | None:
    extra = {"workspace_id": "ws"} if vendor == "fyno" else {}
    checked = parse_settings(extra, settings, where="test", overrides_name="connect()")
    url = base_url or vendor_api(vendor).default_host or "https://acme.user.com"
    return declared_quota(vendor_api(vendor), checked, url)


def test_dx_s_published_quota_is_declared_by_default_on_dx_s_own_api():
    assert quota_of("dx") == Quota(1000, 60.0)
    assert quota_of("dx", DX_API + "/") == Quota(1000, 60.0)
    client = connect("dx", token=TOKEN, clock=FakeClock(), transport=FakeTransport())
    assert client.sender.pacer.quota == Quota(1000, 60.0)


def test_a_declared_quota_overrides_the_published_one_and_zero_declares_none():
    assert quota_of("dx", quota_requests=3000, quota_window_seconds=60) == Quota(3000, 60.0)
    assert quota_of("dx", quota_requests=0) is None  # an account with another plan: 429s alone pace it
    assert quota_of("dx", quota_requests="0", quota_window_seconds=60) is None


def test_a_sandbox_mock_or_proxy_declares_its_own():
    assert quota_of("dx", "http://127.0.0.1:8090") is None
    assert quota_of("dx", "http://127.0.0.1:8090", quota_requests=200, quota_window_seconds=5) == Quota(200, 5.0)


@pytest.mark.parametrize("vendor", ["altatech", "fyno", "usercom"])
def test_vendors_without_a_published_quota_declare_none(vendor):
    assert quota_of(vendor) is None


def test_a_quota_still_needs_both_numbers_unless_it_is_zero():
    with pytest.raises(ConnectionConfigError, match=r"set both, or neither \(0 requests: no quota\)"):
        parse_settings({"quota_requests": 500}, where="DX connection 'crm'")
    with pytest.raises(ConnectionConfigError, match=r"'quota_requests' must be a whole number, 0 or more"):
        parse_settings({"quota_requests": -1, "quota_window_seconds": 60}, where="DX connection 'crm'")
    assert parse_settings({"quota_requests": 0}, where="x").quota_requests == 0


# -- the deployment's store, found by the hooks and given to build() --------------------------------------------------


def client(default_quota_store: str | None, **settings: object):
    checked = parse_settings({}, settings, where="DX connection 'crm'")
    return build(
        vendor_api("dx"),
        None,
        f"token-{uuid.uuid4().hex}",
        checked,
        name="connection 'crm'",
        clock=FakeClock(),
        transport=FakeTransport(),
        default_quota_store=default_quota_store,
    )


def test_a_declared_quota_is_paced_in_the_deployment_s_redis_with_one_log_line(redis_url, caplog):
    with caplog.at_level(logging.INFO, logger="airflow_provider_userattrs.client"):
        dx = client(redis_url)
    assert isinstance(dx.sender.pacer.shared, RedisQuota)
    lines = [r.getMessage() for r in caplog.records if "deployment's Redis" in r.getMessage()]
    assert len(lines) == 1 and "quota_store 'none' turns it off" in lines[0]
    assert f"1000 requests per 60 s paced account-wide in the deployment's Redis {redis_url}" in lines[0]


def test_quota_store_none_turns_the_deployment_s_store_off(redis_url):
    assert client(redis_url, quota_store="none").sender.pacer.shared is None
    assert client(redis_url, quota_store="None").sender.pacer.shared is None


def test_the_deployment_s_store_paces_declared_quotas_only(redis_url):
    assert client(redis_url, quota_requests=0).sender.pacer.shared is None


def test_an_unreachable_deployment_store_falls_back_with_a_warning_not_an_error(caplog):
    pytest.importorskip("redis")
    with caplog.at_level(logging.WARNING):
        dx = client("redis://:s3cret@127.0.0.1:1/0")
    assert dx.sender.pacer.shared is None and dx.sender.pacer.quota == Quota(1000, 60.0)
    assert "not usable" in caplog.text and "s3cret" not in caplog.text


def test_a_named_store_wins_over_the_deployment_s_and_must_work():
    pytest.importorskip("redis")
    with pytest.raises(ConnectionConfigError, match=r"quota_store 'redis://127.0.0.1:1/0' cannot be used"):
        client("redis://127.0.0.1:6379/7", quota_store="redis://127.0.0.1:1/0")
