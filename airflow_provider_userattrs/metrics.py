"""Metrics of each sync try in the deployment's monitoring, through Airflow's own metrics (``Stats``).

Whatever ``[metrics]`` enabled (StatsD, StatsD with Datadog or InfluxDB tags, OpenTelemetry) receives them, with
Airflow's prefix (``statsd_prefix`` / ``otel_prefix``, ``airflow`` by default); nothing is sent when none is on.
README "Metrics" lists every name and what it counts.

Each metric is sent twice, as Airflow sends its own per-DAG metrics: once under its plain name with the tags
``vendor`` and ``conn_id`` (what Datadog, InfluxDB and OpenTelemetry read), and once with the vendor and the
connection id in the name (``userattrs.users_delivered.dx.dx_default``: what plain StatsD keeps, which drops
tags). Airflow 3.2+'s ``[metrics] legacy_names_on = False`` turns the named copies off, as it does Airflow's.

**Per try, once.** The report of a try counts what the whole task has settled so far: a retried full sync
continues the counts of the checkpoint its earlier tries left, and a deferred try continues its own across
every resumption. A counter adds only what *this try* did: the report at the try's end minus the counts the try
started from (:func:`try_baseline`, read before the engine runs, and carried through each deferral in the task's
XCom ``userattrs_metrics_baseline``: a deferral keeps the XCom of its try, and ``dag.test()`` hands a resumed
task only the trigger's event). So a deferral's resumptions add nothing twice, a retry adds only its own
deliveries, and the totals over every try equal what the vendor received. A dry run sends no metric.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "userattrs"

COUNTERS: dict[str, str] = {
    "users_delivered": "users whose attributes the vendor accepted (or that had nothing to send) in this try",
    "users_failed": "users this try ended without delivering: users_rejected plus users_postponed",
    "users_rejected": "users refused by the vendor or invalid before sending in this try (no retry helps)",
    "users_postponed": (
        "users left with transient failures only (the report's retryable_users): the next try or a replay resends them"
    ),
    "requests": "HTTP requests sent to the vendor, retries included",
    "throttled_requests": "answers that were 429 (Too Many Requests)",
    "quota_wait_ms": "milliseconds requests waited for their turn under the vendor's quota or a retry "
    "(summed over threads)",
    "deferrals": "times the task handed a wait for the vendor's quota to the triggerer",
}
"""The counters (``userattrs.<name>``) and what each adds per try."""

TIMERS: dict[str, str] = {
    "sync_duration": "the try's wall time, from its start to its end, deferral waits included",
}
"""The timers (``userattrs.<name>``, milliseconds)."""


@dataclass(frozen=True)
class Counts:
    """What the sync has settled at some point of a task: the part of a report that only grows."""

    delivered: int = 0
    rejected: int = 0
    requests: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    deferrals: int = 0

    @classmethod
    def of_report(cls, report: Mapping[str, Any]) -> Counts:
        failed = int(report.get("failed") or 0)
        return cls(
            delivered=int(report.get("succeeded") or 0),
            rejected=failed - int(report.get("retryable_users") or 0),
            requests=int(report.get("requests_sent") or 0),
            throttled=int(report.get("throttled_requests") or 0),
            waited_seconds=float(report.get("waited_seconds") or 0.0),
            deferrals=int(report.get("deferrals") or 0),
        )

    @classmethod
    def of_state(cls, state: Any) -> Counts:
        """From a checkpoint's ``SyncState`` (its ``failed`` counts rejections only: transient users are pending)."""
        pacing = state.pacing
        return cls(
            delivered=int(state.succeeded),
            rejected=int(state.failed),
            requests=int(state.requests_sent),
            throttled=int(pacing.throttled_requests),
            waited_seconds=float(pacing.waited_seconds),
            deferrals=int(pacing.deferrals),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Counts | None:
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
        except (TypeError, ValueError):
            return None


def metrics_enabled() -> bool:
    """Whether ``[metrics]`` turned any backend on (StatsD, Datadog or OpenTelemetry)."""
    from airflow.configuration import conf

    return any(
        conf.getboolean("metrics", option, fallback=False)
        for option in ("statsd_on", "statsd_datadog_enabled", "otel_on")
    )


def _named_copies() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("metrics", "legacy_names_on", fallback=True)


def try_baseline(context: Mapping[str, Any], folder: Any, *, continues_checkpoint: bool) -> Counts:
    """The counts a try starts from, read before its engine runs.

    :param folder: the task's failure folder (where the checkpoint lives when no task state store does).
    :param continues_checkpoint: whether the engine continues the counts of the checkpoint an earlier try left
        (a full sync or a replay; an incremental sync recomputes its difference and starts each try from zero).
    """
    if not continues_checkpoint:
        return Counts()
    from airflow_provider_userattrs.sync.checkpoint import checkpoint_store

    try:
        state = checkpoint_store(context, folder).load()
    except Exception:  # the engine reports an unreadable checkpoint itself
        log.debug("no checkpoint counts for the metrics", exc_info=True)
        return Counts()
    return Counts.of_state(state) if state is not None else Counts()


BASELINE_KEY = "userattrs_metrics_baseline"
"""The XCom that carries a deferred try's baseline to its resumption."""


def carry_baseline(ti: Any, baseline: Counts | None) -> None:
    """Keep ``baseline`` for the resumption of this deferred try."""
    if baseline is not None:
        ti.xcom_push(key=BASELINE_KEY, value=baseline.to_json())


def carried_baseline(ti: Any) -> Counts | None:
    """The baseline the deferred try kept, or None."""
    try:
        return Counts.from_json(ti.xcom_pull(task_ids=ti.task_id, key=BASELINE_KEY))
    except Exception:
        log.debug("no carried metrics baseline", exc_info=True)
        return None


def try_metrics(report: Mapping[str, Any], baseline: Counts) -> tuple[dict[str, int], float]:
    """What this try adds to each counter, and its wall time in seconds."""
    now = Counts.of_report(report)
    postponed = int(report.get("retryable_users") or 0)
    rejected = max(now.rejected - baseline.rejected, 0)
    counters = {
        "users_delivered": max(now.delivered - baseline.delivered, 0),
        "users_failed": rejected + postponed,
        "users_rejected": rejected,
        "users_postponed": postponed,
        "requests": max(now.requests - baseline.requests, 0),
        "throttled_requests": max(now.throttled - baseline.throttled, 0),
        "quota_wait_ms": max(round((now.waited_seconds - baseline.waited_seconds) * 1000), 0),
        "deferrals": max(now.deferrals - baseline.deferrals, 0),
    }
    return counters, float(report.get("wall_seconds") or report.get("duration_seconds") or 0.0)


_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def name_part(value: str) -> str:
    """``value`` as one segment of a metric name: dots become ``__`` (as Airflow does for task ids in its own
    names, so the hierarchy stays intact) and any other character a name cannot hold ``_``."""
    return _UNSAFE.sub("_", value.replace(".", "__")) or "_"


def emit(report: Mapping[str, Any], baseline: Counts) -> None:
    """Send this try's metrics (see the module's docstring). Never raises: monitoring must not fail a sync."""
    if report.get("dry_run"):
        return
    try:
        from airflow_provider_userattrs.compat import Stats

        vendor, conn_id = str(report.get("vendor") or "unknown"), str(report.get("conn_id") or "unknown")
        tags = {"vendor": vendor, "conn_id": conn_id}
        suffix = f".{name_part(vendor)}.{name_part(conn_id)}" if _named_copies() else None
        counters, wall = try_metrics(report, baseline)
        for name, value in counters.items():
            Stats.incr(f"{PREFIX}.{name}", value, tags=tags)
            if suffix:
                Stats.incr(f"{PREFIX}.{name}{suffix}", value)
        duration = timedelta(seconds=wall)
        Stats.timing(f"{PREFIX}.sync_duration", duration, tags=tags)
        if suffix:
            Stats.timing(f"{PREFIX}.sync_duration{suffix}", duration)
    except Exception:
        log.warning("could not send the sync's metrics", exc_info=True)
