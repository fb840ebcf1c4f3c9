"""A store by default where the deployment has one (issue 24): the Celery broker's Redis paces a declared quota."""

from __future__ import annotations

import pytest

from airflow_provider_userattrs.client.pacing import Quota
from airflow_provider_userattrs.client.shared_quota import RedisQuota
from airflow_provider_userattrs.hooks.base import celery_redis_url

REDIS_URL = "redis://127.0.0.1:6379/7"
DX_API = "https://api.getdx.com"


@pytest.fixture
def celery_on_redis(monkeypatch: pytest.MonkeyPatch) -> str:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", REDIS_URL)
    return REDIS_URL


@pytest.mark.parametrize(
    ("executor", "broker", "found"),
    [
        ("CeleryExecutor", "redis://redis:6379/0", "redis://redis:6379/0"),
        ("LocalExecutor,CeleryExecutor", "rediss://:pw@cache:6380/1", "rediss://:pw@cache:6380/1"),
        ("CeleryExecutor", "amqp://guest@rabbit//", None),  # not a Redis
        ("LocalExecutor", "redis://redis:6379/0", None),  # the celery provider's default: no Redis runs
        ("KubernetesExecutor", "redis://redis:6379/0", None),
    ],
)
def test_the_celery_broker_is_the_default_store_only_where_celery_runs_on_redis(monkeypatch, executor, broker, found):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", broker)
    assert celery_redis_url() == found


def test_a_dx_hook_paces_dx_s_quota_in_the_celery_broker_s_redis(celery_on_redis, make_hook):
    pacer = make_hook("dx", host=DX_API).get_conn().sender.pacer
    assert pacer.quota == Quota(1000, 60.0) and isinstance(pacer.shared, RedisQuota)


def test_quota_store_none_or_no_declared_quota_keeps_the_hook_off_the_broker(celery_on_redis, make_hook):
    assert make_hook("dx", host=DX_API, extra={"quota_store": "none"}).get_conn().sender.pacer.shared is None
    assert make_hook("altatech").get_conn().sender.pacer.shared is None  # budget headers, nothing declared


def test_without_celery_the_store_less_pacing_applies(monkeypatch, make_hook):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    pacer = make_hook("dx", host=DX_API).get_conn().sender.pacer
    assert pacer.quota == Quota(1000, 60.0) and pacer.shared is None


def test_a_hook_says_which_quota_its_clients_pace_to(make_hook):
    assert make_hook("dx", host=DX_API).quota == Quota(1000, 60.0)
    assert make_hook("dx", host=DX_API, extra={"quota_requests": 0}).quota is None
    assert make_hook("dx").quota is None  # the sandbox the fixture points at is not DX's API
    assert make_hook("altatech", extra={"quota_requests": 100, "quota_window_seconds": 10}).quota == Quota(100, 10)
