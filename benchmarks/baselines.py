"""What people write without the provider, measured against the same sandbox as the hooks.

Every baseline sends the same users with the same attributes as the hook it is compared with, one HTTP call
per user, in sequence, the way a ``PythonOperator`` callable is usually written:

* :func:`naive_loop`: ``requests.post`` in a ``for`` loop (a new connection per call, no retries);
* :func:`http_hook_loop`: Airflow's own ``HttpHook(method="POST").run()`` per user;
* :func:`dlt_sink`: a dlt ``@dlt.destination`` sink with its defaults (``batch_size=10``, the batches of one
  load job handed to the function one after another) calling ``requests.post`` per item.

The module also holds :func:`lean_capacity`, the lean multi-threaded urllib3 client that measures how many
requests a second the sandbox itself can serve, and the payload builders the baselines share.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TOKEN = "sandbox-token"
FYNO_WORKSPACE = "sandboxwsid"
VENDORS = ("altatech", "fyno", "dx", "usercom")
VIP_LEVELS = ("none", "silver", "gold", "platinum")


# -- the users every scenario sends ---------------------------------------------------------------------


def user_id(vendor: str, index: int) -> str | int:
    """The id of synthetic user ``index`` in ``vendor``'s id space (all known to the sandbox)."""
    if vendor == "altatech":
        return f"user-{index}"
    if vendor == "fyno":
        return f"fd-{index:07d}"
    if vendor == "dx":
        return f"user{index}@example.com"
    if vendor == "usercom":
        return index + 1
    raise ValueError(f"unknown vendor {vendor!r}")


def attributes(index: int) -> dict[str, Any]:
    """Three attributes per user, as a warehouse gives them: a unique number, a level and a small count.

    ``lifetime_value`` differs for every user, so no vendor can carry two users' values in one shared-value
    call: the API minimum is one call per user except where the vendor has a batch endpoint (Fyno).
    """
    return {
        "lifetime_value": round(10 + index * 1.37, 2),
        "vip_level": VIP_LEVELS[index % len(VIP_LEVELS)],
        "order_count": index % 16,
    }


def users(vendor: str, count: int, start: int = 0) -> Iterator[tuple[str | int, dict[str, Any]]]:
    for index in range(start, start + count):
        yield user_id(vendor, index), attributes(index)


def auth_header(vendor: str) -> dict[str, str]:
    scheme = "Token" if vendor == "usercom" else "Bearer"
    return {"Authorization": f"{scheme} {TOKEN}"}


def request_for(vendor: str, uid: str | int, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Path and JSON body of the vendor's per-user update call, written the obvious way."""
    if vendor == "altatech":
        return "/v1/property/update", {
            "user_id": uid,
            "property_values": [{"property_name": k, "value": v} for k, v in values.items()],
        }
    if vendor == "fyno":
        return f"/v1/{FYNO_WORKSPACE}/live/profiles/properties/set", {"distinct_id": uid, "$set": dict(values)}
    if vendor == "dx":
        # DX stores text: a hand-written loop would send str() of every value.
        return "/users.attributes.update", {
            "email": uid,
            "attributes": [{"name": k, "value": None if v is None else str(v)} for k, v in values.items()],
        }
    if vendor == "usercom":
        return f"/api/public/users/{uid}/set_multiple_attributes/", dict(values)
    raise ValueError(f"unknown vendor {vendor!r}")


def accepted(vendor: str, status: int, body: bytes | str | None) -> bool:
    """Whether the vendor took the update (DX says so in ``ok``, whatever the status)."""
    if status >= 300:
        return False
    if vendor == "dx":
        try:
            return bool(json.loads(body or b"{}").get("ok"))
        except ValueError:
            return False
    return True


@dataclass
class LoopResult:
    """What one baseline run did: users sent and accepted, HTTP calls, wall time."""

    users: int
    accepted: int
    requests: int
    seconds: float
    statuses: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "accepted": self.accepted,
            "requests": self.requests,
            "seconds": self.seconds,
            "statuses": self.statuses,
        }


def _count(statuses: dict[str, int], status: int | str) -> None:
    statuses[str(status)] = statuses.get(str(status), 0) + 1


# -- (a) requests.post in a loop ---------------------------------------------------------------------------


def naive_loop(base_url: str, vendor: str, work: Iterable[tuple[str | int, Mapping[str, Any]]]) -> LoopResult:
    """One ``requests.post`` per user, in sequence, a 429 or a 5xx simply lost (no retry)."""
    import requests

    headers = auth_header(vendor)
    sent = ok = 0
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    for uid, values in work:
        path, body = request_for(vendor, uid, values)
        response = requests.post(base_url + path, json=body, headers=headers, timeout=30)
        sent += 1
        _count(statuses, response.status_code)
        ok += accepted(vendor, response.status_code, response.content)
    return LoopResult(sent, ok, sent, time.perf_counter() - start, statuses)


def naive_mass_update_loop(base_url: str, attribute: str, value: Any, ids: Iterable[int], chunk: int) -> LoopResult:
    """User.com's mass update written by hand: ``requests.post`` per chunk of ``chunk`` ids, in sequence."""
    import requests

    headers = auth_header("usercom")
    url = base_url + "/api/public/users/mass_update_custom_attributes/"
    sent = ok = total = 0
    statuses: dict[str, int] = {}
    batch: list[int] = []
    start = time.perf_counter()

    def flush() -> None:
        nonlocal sent, ok
        response = requests.post(url, json={"ids": batch, "attribute": attribute, "value": value}, headers=headers)
        sent += 1
        _count(statuses, response.status_code)
        if response.status_code < 300:
            ok += len(batch)

    for uid in ids:
        batch.append(uid)
        total += 1
        if len(batch) >= chunk:
            flush()
            batch = []
    if batch:
        flush()
    return LoopResult(total, ok, sent, time.perf_counter() - start, statuses)


# -- (b) Airflow's HttpHook ------------------------------------------------------------------------------


def http_hook_loop(http_conn_id: str, vendor: str, work: Iterable[tuple[str | int, Mapping[str, Any]]]) -> LoopResult:
    """``HttpHook(method="POST").run()`` per user, in sequence (the hook opens a session per call)."""
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=http_conn_id)
    headers = auth_header(vendor)
    sent = ok = 0
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    for uid, values in work:
        path, body = request_for(vendor, uid, values)
        sent += 1
        # check_response off: DX answers 422 for a refused user; the caller decides from the body.
        response = hook.run(path, json=body, headers=headers, extra_options={"check_response": False})
        _count(statuses, response.status_code)
        ok += accepted(vendor, response.status_code, response.content)
    return LoopResult(sent, ok, sent, time.perf_counter() - start, statuses)


# -- (c) dlt destination sink ----------------------------------------------------------------------------


def dlt_available() -> str | None:
    """None when dlt imports, else why not."""
    try:
        import dlt  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def dlt_sink(base_url: str, vendor: str, work: Iterable[tuple[str | int, Mapping[str, Any]]]) -> LoopResult:
    """A ``@dlt.destination`` with its defaults, one ``requests.post`` per item; the whole pipeline timed.

    The time includes dlt's extract, normalize and load steps (its load package on disk), since that is
    what a user of such a sink waits for.
    """
    import os

    import dlt
    import requests

    headers = auth_header(vendor)
    statuses: dict[str, int] = {}
    counts = {"sent": 0, "ok": 0}

    @dlt.destination(name="vendor_api")
    def vendor_api(items: Any, table: Any) -> None:
        for item in items:
            uid = item["user_id"]
            values = {k: item.get(k) for k in ("lifetime_value", "vip_level", "order_count")}
            path, body = request_for(vendor, uid, values)
            response = requests.post(base_url + path, json=body, headers=headers, timeout=30)
            counts["sent"] += 1
            _count(statuses, response.status_code)
            counts["ok"] += accepted(vendor, response.status_code, response.content)

    rows = [{"user_id": uid, **values} for uid, values in work]
    with tempfile.TemporaryDirectory(prefix="userattrs-bench-dlt-") as tmp:
        os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
        pipeline = dlt.pipeline(
            pipeline_name=f"userattrs_bench_{vendor}", destination=vendor_api, pipelines_dir=tmp, dev_mode=True
        )
        start = time.perf_counter()
        pipeline.run(rows, table_name="users")
        seconds = time.perf_counter() - start
    return LoopResult(len(rows), counts["ok"], counts["sent"], seconds, statuses)


# -- the sandbox's own ceiling ---------------------------------------------------------------------------


def lean_capacity(base_url: str, threads: int = 8, seconds: float = 5.0) -> dict[str, Any]:
    """Requests a second the sandbox answers to ``threads`` keep-alive urllib3 connections posting DX updates.

    The client does nothing but send pre-encoded bodies and read the answers, so that what limits the rate is
    the sandbox (and the machine), not the client's own work.
    """
    from urllib.parse import urlsplit

    import urllib3

    parts = urlsplit(base_url)
    pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=threads, block=True, retries=False)
    headers = {"Content-Type": "application/json", **auth_header("dx")}
    bodies = [json.dumps(request_for("dx", user_id("dx", i), attributes(i))[1]).encode() for i in range(1000)]
    counts = [0] * threads
    errors = [0] * threads
    stop = threading.Event()

    def work(slot: int) -> None:
        i = slot
        while not stop.is_set():
            try:
                response = pool.urlopen("POST", "/users.attributes.update", body=bodies[i % 1000], headers=headers)
                if response.status == 200:
                    counts[slot] += 1
                else:
                    errors[slot] += 1
            except urllib3.exceptions.HTTPError:
                errors[slot] += 1
            i += threads

    workers = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    pool.close()
    return {"requests": sum(counts), "errors": sum(errors), "seconds": elapsed, "threads": threads}


BASELINES: dict[str, Callable[..., LoopResult]] = {
    "naive": naive_loop,
    "httphook": http_hook_loop,
    "dlt": dlt_sink,
}
