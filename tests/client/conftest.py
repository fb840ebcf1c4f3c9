"""Clients built with ``connect`` over a fake clock and transport: no Airflow involved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_userattrs.client import Client, connect
from tests.client.fakes import TOKEN, FakeClock, FakeTransport

BASE_URLS = {"usercom": "http://127.0.0.1:9"}
REDIS_URL = "redis://127.0.0.1:6379/7"
"""The quota-store tests' Redis (a database of their own)."""


@pytest.fixture
def redis_url() -> str:
    """``REDIS_URL``, or the test is skipped when no Redis answers there."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def make_client(clock: FakeClock, fake: FakeTransport) -> Callable[..., Client]:
    """A client of ``vendor`` on the fake transport; settings as keyword arguments."""

    def make(vendor: str, base_url: str = "http://127.0.0.1:9", **settings: Any) -> Client:
        settings.setdefault("concurrency", 4)
        return connect(vendor, base_url=base_url, token=TOKEN, clock=clock, transport=fake, **settings)

    return make
