"""Hooks on connections defined the way users write them (AIRFLOW_CONN_*), over the client's fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from tests.client.fakes import TOKEN, FakeClock, FakeTransport, SentRequest

__all__ = ["TOKEN", "FakeClock", "FakeTransport", "SentRequest"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def make_hook(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, fake: FakeTransport
) -> Callable[..., UserAttributesHook]:
    """A hook on a connection defined through AIRFLOW_CONN_* (the JSON form users write), on a fake transport."""

    def make(conn_type: str, host: str = "http://127.0.0.1:9", extra: dict[str, Any] | None = None, **kw: Any):
        conn: dict[str, Any] = {"conn_type": conn_type, "host": host, "password": TOKEN}
        if extra:
            conn["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_UNIT_{conn_type.upper()}", json.dumps(conn))
        kw.setdefault("concurrency", 4)
        kw.setdefault("transport", fake)
        return get_hook(f"unit_{conn_type}", clock=clock, **kw)

    return make
