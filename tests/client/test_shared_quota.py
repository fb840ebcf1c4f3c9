"""The optional account-wide pace in Redis (``quota_store``): one GCRA counter for every process."""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid

import pytest

from airflow_provider_userattrs.client.pacing import Pacer, Quota
from airflow_provider_userattrs.client.shared_quota import account_key, connect
from airflow_provider_userattrs.errors import ConnectionConfigError


def test_processes_sharing_a_store_never_exceed_the_quota_in_any_window(redis_url):
    account = f"test:{uuid.uuid4().hex}"
    requests, window = 40, 1.0
    sent: list[float] = []
    lock = threading.Lock()

    def process() -> None:  # each "process" has its own pacer and its own connection to the store
        shared = connect(redis_url, account, requests, window)
        assert shared is not None
        pacer = Pacer(quota=Quota(requests, window), shared=shared)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            pacer.acquire()
            with lock:
                sent.append(time.monotonic())
            pacer.on_answer(200)

    threads = [threading.Thread(target=process) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    busiest = max(sum(1 for t in sent if start <= t < start + window) for start in sent)
    assert busiest <= requests  # no burst: a sliding window never sees one request too many
    assert len(sent) >= requests  # and the quota is used, not starved


def test_an_unreachable_store_found_by_default_falls_back_to_decentralised_pacing(caplog):
    pytest.importorskip("redis")
    with caplog.at_level(logging.WARNING):
        assert connect("redis://:s3cret@127.0.0.1:1/0", "test:x", 10, 1.0) is None
    assert "not usable" in caplog.text and "s3cret" not in caplog.text


def test_a_named_store_that_cannot_be_used_is_a_configuration_error():
    pytest.importorskip("redis")
    with pytest.raises(
        ConnectionConfigError, match=r"quota_store 'redis://\*\*\*@127.0.0.1:1/0' cannot be used"
    ) as raised:
        connect("redis://:s3cret@127.0.0.1:1/0", "test:x", 10, 1.0, required=True, where="DX connection 'crm'")
    assert "DX connection 'crm'" in str(raised.value) and "s3cret" not in str(raised.value)


def test_a_named_store_without_its_client_library_is_a_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    with pytest.raises(ConnectionConfigError, match=r"redis package is not installed"):
        connect("redis://127.0.0.1:6379/0", "test:x", 10, 1.0, required=True)


def test_a_connection_naming_an_unreachable_store_fails_before_any_request(make_client, fake):
    pytest.importorskip("redis")
    with pytest.raises(ConnectionConfigError, match="quota_store"):
        make_client("dx", quota_requests=10, quota_window_seconds=1, quota_store="redis://127.0.0.1:1/0")
    assert fake.calls == []


class FakeStore:
    """Virtual scheduling on the test's clock, as the Lua script does on Redis's: each take() reserves a slot."""

    def __init__(self, clock: Clock, interval: float) -> None:
        self.clock, self.interval, self.tat, self.calls = clock, interval, 0.0, 0

    def take(self) -> float:
        self.calls += 1
        now = self.clock.monotonic()
        slot = max(self.tat, now)
        self.tat = slot + self.interval
        return slot - now


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_each_request_reserves_one_slot_in_the_store_and_goes_at_it():
    clock = Clock()
    store = FakeStore(clock, 0.25)  # the account's slots, a quarter second apart
    pacer = Pacer(clock=clock, quota=Quota(100_000, 10.0), shared=store)  # this process alone would go faster
    first = pacer.reserve(defer=False)
    clock.now += 0.01
    second = pacer.reserve(defer=False)  # another thread: the store gives it the next slot, reserved for it
    assert (first, store.calls) == (0.0, 2) and second == pytest.approx(0.24)
    clock.now += second
    assert pacer.reserve(defer=False) == 0.0  # it comes back and goes, without asking the store again
    assert store.calls == 2
    sent = []
    for _ in range(20):
        pacer.acquire()
        sent.append(clock.now)
    assert store.calls == 22  # one call per request
    assert [round(b - a, 6) for a, b in itertools.pairwise(sent)] == [0.25] * 19


def test_a_store_that_fails_mid_sync_leaves_the_pacing_to_the_vendor_s_answers(caplog):
    class Broken:
        def take(self) -> float:
            raise ConnectionError("gone")

    pacer = Pacer(clock=Clock(), quota=Quota(40, 10.0), shared=Broken())
    with caplog.at_level(logging.WARNING):
        assert pacer.reserve(defer=False) == 0.0
    assert pacer.shared is None and "quota_store failed (ConnectionError)" in caplog.text


def test_the_account_key_does_not_hold_the_token():
    key = account_key("dx", "https://api.getdx.com", "secret-token-123")
    assert "secret" not in key and key.startswith("dx:")
    assert key != account_key("dx", "https://api.getdx.com", "another-token")
