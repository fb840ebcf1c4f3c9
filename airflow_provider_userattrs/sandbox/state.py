"""The sandbox's memory: vendor data, request statistics, fault settings and scripted answers.

Everything sits behind one lock: handlers are short, and a single lock keeps the state, the counters and
the fault decisions consistent with each other, which is what tests compare against.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from typing import Any

from airflow_provider_userattrs.sandbox.quota import Quota, QuotaCounter

VENDORS = ("altatech", "fyno", "dx", "usercom")
FYNO_BATCH_SHAPES = ("operations", "results", "batch", "request_id")
DX_FAILURE_SHAPES = ("name_error", "attribute_message", "names")
DX_UPDATED_SHAPES = ("always", "changed")
USERCOM_MASS_METHODS = ("both", "PUT", "POST")


def _refuse_unknown(cls: type, values: dict[str, Any], what: str) -> None:
    """A typo in a fault name must fail loudly, not leave the fault silently off."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)}; known: {sorted(known)}")


@dataclass
class Faults:
    """Fault injection settings (all off by default).

    Rates are probabilities per request. ``rate_limit`` is requests per second over all vendors (the
    answer beyond it is 429 with ``Retry-After``, in seconds or as an HTTP date).
    """

    latency: float = 0.0
    """Seconds added to every answer (simulates the network and the vendor's own work)."""
    error_rate: float = 0.0
    """Share of requests answered with one of ``error_statuses`` before anything is applied."""
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    throttle_rate: float = 0.0
    """Share of requests answered 429 with ``Retry-After`` (independent of ``rate_limit``)."""
    rate_limit: float | None = None
    retry_after_format: str = "seconds"
    """``seconds`` or ``http-date``."""
    retry_after: float | None = None
    """Fixed Retry-After for throttled answers; by default the time until the limit lets a request in."""
    drop_rate: float = 0.0
    """Share of connections closed without an answer (the request is not applied)."""
    reset_rate: float = 0.0
    """Share of answers cut mid-body with a TCP reset (the request IS applied: the client cannot know)."""
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    """Answers delayed by ``slow_seconds`` (longer than a client's read timeout)."""
    garbage_rate: float = 0.0
    """Share of answers replaced by an HTML error page with HTTP 200 (the request is not applied)."""
    seed: int | None = None
    quota: dict[str, Quota] = field(default_factory=dict)
    """A budget per vendor account, shared by every connection (see :mod:`.quota`). Given as a dict keyed by
    vendor (``{"dx": {"requests": 1000, "window_seconds": 60, "kind": "sliding"}}``), or as one quota or a
    list of quotas with a ``vendor`` field."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Faults:
        _refuse_unknown(cls, values, "fault settings")
        data = dict(values)
        if "error_statuses" in data:
            data["error_statuses"] = tuple(int(s) for s in data["error_statuses"])
        if data.get("retry_after_format", "seconds") not in ("seconds", "http-date"):
            raise ValueError("retry_after_format must be 'seconds' or 'http-date'")
        if "quota" in data:
            data["quota"] = _quotas(data["quota"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_statuses"] = list(self.error_statuses)
        return data


def _quotas(value: Any) -> dict[str, Quota]:
    """Quotas by vendor, from a dict keyed by vendor or from quotas that name their ``vendor``."""
    if not value:
        return {}
    if isinstance(value, dict) and "vendor" not in value:
        return {_vendor(vendor): Quota.from_dict(dict(spec)) for vendor, spec in value.items()}
    quotas = {}
    for spec in value if isinstance(value, list) else [value]:
        settings = dict(spec)
        vendor = _vendor(settings.pop("vendor"))
        quotas[vendor] = Quota.from_dict(settings)
    return quotas


@dataclass(frozen=True)
class AnswerShapes:
    """Which shape the sandbox gives the answer parts no vendor publishes (vendor-notes, "What nobody
    publishes"). Every choice is plausible, not published: a client must tolerate each of them, and tests
    switch between them instead of trusting one invented shape.

    ``fyno_batch``, the per-item status in Fyno's 202 batch answer:

    - ``operations`` (the default, as documented, vendor-notes): one item per entry sent, keyed by operation
      and naming no user: ``{"request_id": "...", "batch": [{"$set": "ok", "$unset": "ok"}, ...]}``. Only
      ``"ok"`` is documented; for a refused item the sandbox answers the reason in place of ``"ok"`` (its
      choice: ``{"$set": "string over 255 characters"}``).
    - ``results``: ``{"request_id": "...", "results": [{"distinct_id": "d1", "status": "ok"},
      {"distinct_id": "d2", "status": "error", "_message": "user not found"}]}``
    - ``batch``: ``{"request_id": "...", "batch": [{"distinct_id": "d1", "success": true},
      {"distinct_id": "d2", "success": false, "error": "user not found"}]}``
    - ``request_id``: ``{"request_id": "..."}`` only; a refused item is silently not applied (the batch is
      processed asynchronously, and nothing says how it went).

    ``dx_failures``, an entry of ``user.failures`` in DX's ``ok: true`` answer (seed 002 shows only ``[]``):

    - ``name_error``: ``[{"name": "Level", "error": "invalid_value"}]``
    - ``attribute_message``: ``[{"attribute": "Level", "message": "value must be a string or null"}]``
    - ``names``: ``["Level"]``

    ``dx_updated``, what ``attributes[].updated`` says (seed 002 shows only ``true``; vendor-notes: whether
    ``false`` means refused or unchanged is not published):

    - ``always``: every non-null attribute applied is answered ``"updated": true``;
    - ``changed``: an attribute whose value was already stored is answered ``"updated": false``.

    ``usercom_mass_method``, which method the mass update of custom attributes takes (seed 004's heading
    says PUT, its examples POST; a real account may take only one): ``both`` (default), ``PUT`` or ``POST``;
    the other is answered 405 with ``Allow`` and DRF's ``Method "X" not allowed.``
    """

    fyno_batch: str = "operations"
    dx_failures: str = "name_error"
    dx_updated: str = "always"
    usercom_mass_method: str = "both"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AnswerShapes:
        _refuse_unknown(cls, values, "answer shapes")
        shapes = cls(**values)
        if shapes.fyno_batch not in FYNO_BATCH_SHAPES:
            raise ValueError(f"fyno_batch must be one of {FYNO_BATCH_SHAPES}, not {shapes.fyno_batch!r}")
        if shapes.dx_failures not in DX_FAILURE_SHAPES:
            raise ValueError(f"dx_failures must be one of {DX_FAILURE_SHAPES}, not {shapes.dx_failures!r}")
        if shapes.dx_updated not in DX_UPDATED_SHAPES:
            raise ValueError(f"dx_updated must be one of {DX_UPDATED_SHAPES}, not {shapes.dx_updated!r}")
        if shapes.usercom_mass_method not in USERCOM_MASS_METHODS:
            raise ValueError(
                f"usercom_mass_method must be one of {USERCOM_MASS_METHODS}, not {shapes.usercom_mass_method!r}"
            )
        return shapes

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Step:
    """One scripted answer for the next request: a status, a drop, a reset, a delay or a raw body."""

    status: int | None = None
    retry_after: str | None = None
    drop: bool = False
    reset: bool = False
    delay: float = 0.0
    body: str | None = None
    content_type: str = "application/json"
    apply: bool = False
    """Whether the request is applied before the scripted answer is sent (for status/body steps)."""
    vendor: str | None = None
    """Only consumed by a request to this vendor (others pass it by)."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Step:
        _refuse_unknown(cls, values, "script step keys")
        if values.get("retry_after") is not None:
            values = {**values, "retry_after": str(values["retry_after"])}
        return cls(**values)


@dataclass
class TokenBucket:
    """``rate`` tokens a second, holding at most one second's worth."""

    rate: float
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def take(self, now: float) -> float:
        """0 when a request may go now, else the seconds until one may."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens))


@dataclass(frozen=True)
class Decision:
    """What the fault layer decided for one request."""

    kind: str = "normal"  # normal | status | drop | reset | garbage
    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    body: str | None = None
    content_type: str = "application/json"
    apply: bool = True


class SandboxState:
    """Vendor data, statistics, faults and script, shared by every handler thread.

    The accounts' set-up (tokens, Fyno workspaces, the User.com app's custom attributes, the answer shapes)
    outlives :meth:`reset`, as an account's settings outlive its data.
    """

    def __init__(
        self,
        tokens: Iterable[str] = ("sandbox-token",),
        fyno_workspaces: Iterable[str] = ("sandboxwsid",),
        usercom_attributes: Iterable[str] | None = (),
        answer_shapes: AnswerShapes | None = None,
    ):
        self.lock = threading.RLock()
        self.tokens = frozenset(tokens)
        self.fyno_workspaces = frozenset(fyno_workspaces)
        self.usercom_attributes: set[str] | None = None if usercom_attributes is None else set(usercom_attributes)
        """Custom attributes of the User.com app; ``None`` turns the existence check off."""
        self.shapes = answer_shapes or AnswerShapes()
        self.reset()

    def reset(self) -> None:
        """Forget data, statistics, faults, quotas and script (the accounts' set-up stays)."""
        with self.lock:
            self.data: dict[str, dict[Any, Any]] = {vendor: {} for vendor in VENDORS}
            self.fyno_types: dict[tuple[str, str], str] = {}
            self.unknown: dict[str, set[Any]] = {vendor: set() for vendor in VENDORS}
            self.faults = Faults()
            self.quotas: dict[str, QuotaCounter] = {}
            self.bucket: TokenBucket | None = None
            self.random = random.Random()
            self.script_steps: deque[Step] = deque()
            self.total = 0
            self.by_status: Counter[str] = Counter()
            self.by_vendor: Counter[str] = Counter()
            self.by_endpoint: Counter[str] = Counter()
            self.records_applied: Counter[str] = Counter()
            self.log: deque[dict[str, Any]] = deque(maxlen=2000)
            self.started = time.monotonic()

    # -- configuration -----------------------------------------------------------------------------

    def set_faults(self, values: dict[str, Any]) -> Faults:
        with self.lock:
            self.faults = Faults.from_dict(values)
            self.bucket = TokenBucket(self.faults.rate_limit) if self.faults.rate_limit else None
            self.quotas = {vendor: QuotaCounter(quota) for vendor, quota in self.faults.quota.items()}
            self.random = random.Random(self.faults.seed)
            return self.faults

    def set_answer_shapes(self, values: dict[str, Any]) -> AnswerShapes:
        """Pick the shapes of the answer parts no vendor publishes (the others keep their current shape)."""
        with self.lock:
            self.shapes = AnswerShapes.from_dict({**self.shapes.to_dict(), **values})
            return self.shapes

    def declare_usercom_attributes(self, names: Iterable[str] | None, replace: bool = False) -> list[str] | None:
        """Create custom attributes in the User.com app (``None``: accept any name, the check off)."""
        with self.lock:
            if names is None:
                self.usercom_attributes = None
            else:
                declared = {str(n) for n in names}
                kept = set() if replace or self.usercom_attributes is None else self.usercom_attributes
                self.usercom_attributes = kept | declared
            return self.declared_usercom_attributes()

    def declared_usercom_attributes(self) -> list[str] | None:
        with self.lock:
            return None if self.usercom_attributes is None else sorted(self.usercom_attributes)

    def script(self, steps: Iterable[dict[str, Any]]) -> int:
        with self.lock:
            self.script_steps.extend(Step.from_dict(dict(step)) for step in steps)
            return len(self.script_steps)

    def register_unknown_users(self, vendor: str, user_ids: Iterable[Any]) -> None:
        with self.lock:
            self.unknown[_vendor(vendor)].update(user_ids)

    def is_unknown(self, vendor: str, user_id: Any) -> bool:
        if vendor == "dx" and isinstance(user_id, str) and user_id.lower().endswith(".invalid"):
            return True
        if vendor == "usercom" and isinstance(user_id, int) and user_id >= 900_000_000:
            return True
        return user_id in self.unknown[vendor]

    # -- per request ---------------------------------------------------------------------------------

    def decide(self, vendor: str | None) -> Decision:
        """Consume the script or roll the dice for one vendor request."""
        with self.lock:
            step = self._next_step(vendor)
            if step is not None:
                if step.drop:
                    return Decision("drop", delay=step.delay, apply=False)
                if step.reset:
                    return Decision("reset", delay=step.delay)
                if step.status is not None or step.body is not None:
                    return Decision(
                        "status" if step.body is None else "garbage",
                        status=step.status or 200,
                        retry_after=step.retry_after,
                        delay=step.delay,
                        body=step.body,
                        content_type=step.content_type,
                        apply=step.apply,
                    )
                return Decision(delay=step.delay)
            faults = self.faults
            delay = faults.latency
            refused = self._over_quota(vendor, delay)
            if refused is not None:
                return refused
            if self.bucket is not None:
                wait = self.bucket.take(time.monotonic())
                if wait:
                    return Decision("status", 429, self._retry_after(wait), delay, apply=False)
            roll = self.random.random
            if faults.drop_rate and roll() < faults.drop_rate:
                return Decision("drop", delay=delay, apply=False)
            if faults.throttle_rate and roll() < faults.throttle_rate:
                return Decision("status", 429, self._retry_after(faults.retry_after or 1.0), delay, apply=False)
            if faults.error_rate and roll() < faults.error_rate:
                status = self.random.choice(faults.error_statuses)
                return Decision("status", status, delay=delay, apply=False)
            if faults.garbage_rate and roll() < faults.garbage_rate:
                body = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
                return Decision("garbage", 200, delay=delay, body=body, content_type="text/html", apply=False)
            if faults.slow_rate and roll() < faults.slow_rate:
                delay += faults.slow_seconds
            if faults.reset_rate and roll() < faults.reset_rate:
                return Decision("reset", delay=delay)
            return Decision(delay=delay)

    def _over_quota(self, vendor: str | None, delay: float) -> Decision | None:
        """The vendor's 429 when its account's budget is spent (the request is then not applied), else None.

        Judged before the token bucket and the dice: a request the quota admits counts against the budget even
        if a fault then fails it, as a vendor counts every request it receives.
        """
        counter = self.quotas.get(vendor) if vendor else None
        if counter is None:
            return None
        admission = counter.admit(time.time())
        if admission.allowed:
            return None
        # AltaTech documents X-RateLimit-* headers and no Retry-After; DX, Fyno and User.com send Retry-After.
        retry_after = None if vendor == "altatech" else self._retry_after(admission.retry_after)
        return Decision("status", 429, retry_after=retry_after, delay=delay, apply=False)

    def _next_step(self, vendor: str | None) -> Step | None:
        for index, step in enumerate(self.script_steps):
            if step.vendor is None or step.vendor == vendor:
                del self.script_steps[index]
                return step
        return None

    def _retry_after(self, seconds: float) -> str:
        if self.faults.retry_after is not None:
            seconds = self.faults.retry_after
        seconds = max(0, math.ceil(seconds))
        if self.faults.retry_after_format == "http-date":
            return formatdate(time.time() + seconds, usegmt=True)
        return str(seconds)

    def rate_limit_headers(self) -> dict[str, str]:
        """AltaTech's X-RateLimit-* headers, on every AltaTech answer while a quota or a rate limit is set."""
        with self.lock:
            counter = self.quotas.get("altatech")
            if counter is not None:
                budget = counter.peek(time.time())
                return {
                    "X-RateLimit-Limit": str(counter.quota.requests),
                    "X-RateLimit-Remaining": str(budget.remaining),
                    "X-RateLimit-Reset": str(math.ceil(budget.reset_at)),  # Unix seconds, per vendor-notes
                }
            if self.bucket is None:
                return {}
            return {
                "X-RateLimit-Limit": str(int(self.bucket.rate)),
                "X-RateLimit-Remaining": str(self.bucket.remaining),
                # When the next request will be let in (Unix seconds, as AltaTech sends it).
                "X-RateLimit-Reset": str(
                    math.ceil(time.time() + (0 if self.bucket.remaining else 1 / self.bucket.rate))
                ),
            }

    def record(self, vendor: str | None, method: str, path: str, status: int | str, authorized: bool) -> None:
        with self.lock:
            self.total += 1
            self.by_status[str(status)] += 1
            self.by_vendor[vendor or "unknown"] += 1
            self.by_endpoint[f"{method} {_endpoint(path)}"] += 1
            self.log.append(
                {"vendor": vendor, "method": method, "path": path, "status": status, "auth_header": authorized}
            )

    # -- inspection ----------------------------------------------------------------------------------

    def snapshot(self, vendor: str) -> dict[str, Any]:
        with self.lock:
            data = self.data[_vendor(vendor)]
            if vendor == "fyno":
                return {ws: {str(k): dict(v) for k, v in users.items()} for ws, users in data.items()}
            return {str(k): dict(v) for k, v in data.items()} if vendor == "usercom" else copy.deepcopy(data)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            users = {
                vendor: (
                    sum(len(u) for u in self.data[vendor].values()) if vendor == "fyno" else len(self.data[vendor])
                )
                for vendor in VENDORS
            }
            return {
                "requests": {
                    "total": self.total,
                    "by_status": dict(self.by_status),
                    "by_vendor": dict(self.by_vendor),
                    "by_endpoint": dict(self.by_endpoint),
                    "per_second": round(self.total / elapsed, 1),
                },
                "users": users,
                "records_applied": dict(self.records_applied),
                "faults": self.faults.to_dict(),
                "script_left": len(self.script_steps),
                "quota": {vendor: counter.stats() for vendor, counter in self.quotas.items()},
            }

    def recent_requests(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log)[-limit:]


def _vendor(vendor: str) -> str:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")
    return vendor


def _endpoint(path: str) -> str:
    """Path with ids replaced, so that statistics group per endpoint, not per user."""
    parts = path.split("?")[0].split("/")
    return "/".join("{id}" if p.isdigit() else p for p in parts)
