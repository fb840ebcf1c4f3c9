"""How well a sync used the vendor's declared quota: one definition for the report, the UI, the demo, the
warehouse-sync DAG's summary and the benchmarks.

* **share used** = the requests the vendor accepted over what the declared quota allows in the same time:
  ``accepted / (requests / window_seconds * span)``, the span running from the first request to the last (for
  a run: the first chunk's start to the last chunk's end, so that chunks waiting their turn count). 1.0 means
  the sync could not have gone faster at the quota's sustained rate. A window that starts empty lets a burst of
  ``requests`` through at once, so a run only a few windows long can show more than 1.0; a long one cannot.
* **429 ratio** = the answers that were 429 over the requests sent (accepted + 429s): the quota spent on
  nothing.

Pure functions of numbers (no Airflow): a task's report, a run's reports or a benchmark's counts all come down
to :func:`quota_use`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Moment = float | datetime | str
"""A time: Unix seconds, a datetime or an ISO 8601 text (as the reports write ``started_at``/``finished_at``)."""


@dataclass(frozen=True)
class QuotaUse:
    """What a sync (a task or a run) made of a declared quota of ``quota_requests`` per ``window_seconds``."""

    quota_requests: int
    window_seconds: float
    accepted: int
    """Requests the vendor accepted (sent minus the 429s)."""
    throttled: int
    """Requests answered 429."""
    span_seconds: float
    """First request to last (first chunk's start to last chunk's end for a run)."""

    @property
    def share_used(self) -> float | None:
        """Accepted requests over what the quota allows in the span (None for a span of no time)."""
        capacity = self.quota_requests / self.window_seconds * self.span_seconds
        return self.accepted / capacity if capacity > 0 else None

    @property
    def throttled_ratio(self) -> float | None:
        """429s over the requests sent (None when none was sent)."""
        sent = self.accepted + self.throttled
        return self.throttled / sent if sent else None

    def as_dict(self) -> dict[str, Any]:
        """For a report, an XCom or the UI's JSON (rounded; shares as fractions, not percentages)."""
        share, ratio = self.share_used, self.throttled_ratio
        return {
            "quota": {"requests": self.quota_requests, "window_seconds": self.window_seconds},
            "span_seconds": round(self.span_seconds, 3),
            "requests_accepted": self.accepted,
            "throttled_requests": self.throttled,
            "quota_used": round(share, 4) if share is not None else None,
            "throttled_ratio": round(ratio, 4) if ratio is not None else None,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> QuotaUse:
        """Back from :meth:`as_dict` (a report, a run's summary), as rounded as it was written."""
        quota = values["quota"]
        return cls(
            int(quota["requests"]),
            float(quota["window_seconds"]),
            int(values["requests_accepted"]),
            int(values["throttled_requests"]),
            float(values["span_seconds"]),
        )

    def describe(self) -> str:
        """One line for a log or a summary."""
        share, ratio = self.share_used, self.throttled_ratio
        used = f"{100 * share:.1f} % used" if share is not None else "no time spent"
        refused = f"{100 * ratio:.2f} %" if ratio is not None else "none sent"
        return (
            f"quota {self.quota_requests:,} requests per {self.window_seconds:g} s: {used} over "
            f"{self.span_seconds:,.0f} s ({self.accepted:,} requests accepted, {self.throttled:,} answered 429: "
            f"{refused})"
        )


def quota_use(
    accepted: int, throttled: int, first: Moment, last: Moment, quota_requests: int, window_seconds: float
) -> QuotaUse:
    """The share of a declared quota used and the 429 ratio, from what the vendor answered and when.

    :param accepted: requests the vendor accepted (sent minus 429s).
    :param throttled: requests answered 429.
    :param first: when the first request went (or the sync started).
    :param last: when the last answer came (or the sync finished).
    :param quota_requests: the declared quota's requests per window.
    :param window_seconds: its window.
    """
    if quota_requests <= 0 or window_seconds <= 0:
        raise ValueError(f"a declared quota needs requests and a window above 0, not {quota_requests}/{window_seconds}")
    span = max(0.0, _seconds(last) - _seconds(first))
    return QuotaUse(quota_requests, window_seconds, int(accepted), int(throttled), span)


def run_quota_use(
    reports: Iterable[Mapping[str, Any] | None] | Mapping[str, Any], quota: tuple[int, float] | None = None
) -> QuotaUse | None:
    """:func:`quota_use` of a whole run from its task reports (``requests_sent``, ``throttled_requests``,
    ``started_at``, ``finished_at``): accepted = sent minus 429s, over the first start to the last finish.

    :param quota: ``(requests, window_seconds)``; by default the one the reports say their client paced to
        (their ``quota`` key, written when a quota was declared or published).
    :return: None when no quota is known or no report says when it ran (a dry run, chunks that never reported).
    """
    if isinstance(reports, Mapping):  # xcom_pull of a mapped task with a single chunk gives the value itself
        reports = [reports]
    timed = [r for r in reports if r and r.get("started_at") and r.get("finished_at")]
    quota = quota or next((_declared(r) for r in timed if _declared(r)), None)
    if not timed or quota is None:
        return None
    quota_requests, window_seconds = quota
    sent = sum(int(r.get("requests_sent") or 0) for r in timed)
    throttled = sum(int(r.get("throttled_requests") or 0) for r in timed)
    first = min(_seconds(r["started_at"]) for r in timed)
    last = max(_seconds(r["finished_at"]) for r in timed)
    return quota_use(sent - throttled, throttled, first, last, quota_requests, window_seconds)


def _declared(report: Mapping[str, Any]) -> tuple[int, float] | None:
    quota = report.get("quota")
    if isinstance(quota, Mapping) and quota.get("requests") and quota.get("window_seconds"):
        return int(quota["requests"]), float(quota["window_seconds"])
    return None


def _seconds(moment: Moment) -> float:
    if isinstance(moment, datetime):
        return moment.timestamp()
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).timestamp()
    return float(moment)
