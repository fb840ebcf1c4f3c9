"""An optional account-wide pace kept in a store the deployment already has (the Celery broker's Redis).

The decentralised pacing of :mod:`.pacing` needs nothing but the vendor's answers and meets its targets
on its own. Where a Redis is at hand, every process using a connection can instead take its turn from
one counter: the generic cell rate algorithm (GCRA) in a single Lua script, atomic in Redis, so the
account's requests are spaced exactly ``window / requests`` apart whatever the number of tasks and
workers, and no request is sent only to be answered 429. Set the connection extra
``quota_store`` to a Redis URL (``redis://host:6379/0``); it needs a declared quota and the ``redis``
package (``pip install airflow-provider-userattrs[redis]``).

A store the user named (``quota_store``) that cannot be used when the sync starts is a configuration error:
the task fails at once saying so. If it fails later, mid-sync, pacing falls back to the decentralised rules
with a warning (:class:`~.pacing.Pacer`): a sync never fails half-way because the store went down.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_userattrs.errors import ConnectionConfigError

log = logging.getLogger(__name__)

# KEYS[1] = the account's key; ARGV = interval (s), window (s). The time is Redis's own, so every process reads
# one clock. Reserves the account's next slot (virtual scheduling: the theoretical arrival time moves one interval
# on) and returns the seconds until it as a string (Lua numbers become integers); '0' = now.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
local ttl = math.ceil((tat + interval - now + tonumber(ARGV[2])) * 1000)
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return tostring(tat - now)
"""
MARGIN = 0.02
"""Slots are this much further apart than the quota's rate: a request whose thread wakes a little late must not
put one request too many in a sliding window (DX's quota used at 98 %, and no 429)."""


class SharedQuota(Protocol):
    """Reserves the account's next slot for one request: the seconds until it (0: now). The slot is the caller's:
    it sends its request then, without asking again."""

    def take(self) -> float: ...


class RedisQuota:
    """GCRA over Redis, by virtual scheduling: one slot every ``window / requests`` seconds (and :data:`MARGIN`)
    for the whole account, each reserved by one request, so that one Redis call serves one request whatever the
    number of threads and processes waiting (asking again until a slot is free had 128 threads polling Redis and
    used 64-72 % of the quota). No burst: a sliding-window vendor never sees more than ``requests`` in any window.

    :param url: the Redis URL.
    :param account: what identifies the quota (the connection's vendor, host and token digest: two
        connections with the same key share one quota, as they share one account).
    :param requests: the quota's requests per window.
    :param window_seconds: the quota's window.
    """

    def __init__(self, url: str, account: str, requests: int, window_seconds: float) -> None:
        import redis

        self._client: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._key = f"userattrs:quota:{account}"
        self._interval = window_seconds / requests * (1 + MARGIN)
        self._window = window_seconds
        self._script: Any = self._client.register_script(_RESERVE)

    def ping(self) -> None:
        self._client.ping()

    def take(self) -> float:
        return float(self._script(keys=[self._key], args=[repr(self._interval), repr(self._window)]))


def account_key(vendor: str, base_url: str, token: str) -> str:
    """A key naming the vendor account without holding its token."""
    digest = hashlib.sha256(f"{vendor}|{base_url}|{token}".encode()).hexdigest()[:24]
    return f"{vendor}:{digest}"


def shown_url(url: str) -> str:
    """``url`` without its password (``redis://:secret@host`` -> ``redis://***@host``), for messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]))


def connect(
    url: str, account: str, requests: int, window_seconds: float, *, required: bool = False, where: str = "client"
) -> SharedQuota | None:
    """The shared quota of ``account`` in the store at ``url``.

    :param required: the store was named by the user (the ``quota_store`` setting): one that cannot be used
        (its client library missing, unreachable) is a configuration error, since the user asked for an
        account-wide pace and would otherwise not get it without noticing. A store found by default falls
        back, with a warning, to the pacing from the vendor's answers (``None``).
    :raises ConnectionConfigError: a required store that cannot be used, naming it (without its password).
    """
    try:
        quota = RedisQuota(url, account, requests, window_seconds)
        quota.ping()  # reach it now rather than on the first request
    except Exception as exc:  # whatever the problem, the store cannot serve
        problem = (
            "the redis package is not installed (pip install 'airflow-provider-userattrs[redis]')"
            if isinstance(exc, ImportError)
            else f"{type(exc).__name__}: {exc}"
        )
        if required:
            raise ConnectionConfigError(
                f"{where}: quota_store {shown_url(url)!r} cannot be used ({problem}); fix it, or remove the "
                "setting to pace from the vendor's answers alone"
            ) from None
        log.warning("quota_store %s not usable (%s): pacing from the vendor's answers only", shown_url(url), problem)
        return None
    return quota
