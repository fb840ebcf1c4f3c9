from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook

TOKEN = "unit-test-token-0123456789"


class FakeClock:
    """Time that only moves when the code under test sleeps: retries are checked without waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_hook(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Callable[..., UserAttributesHook]:
    """A hook on a connection defined through AIRFLOW_CONN_* (the JSON form users write)."""

    def make(conn_type: str, host: str = "http://127.0.0.1:9", extra: dict[str, Any] | None = None, **kw: Any):
        conn: dict[str, Any] = {"conn_type": conn_type, "host": host, "password": TOKEN}
        if extra:
            conn["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_UNIT_{conn_type.upper()}", json.dumps(conn))
        kw.setdefault("concurrency", 4)
        return get_hook(f"unit_{conn_type}", clock=clock, **kw)

    return make
