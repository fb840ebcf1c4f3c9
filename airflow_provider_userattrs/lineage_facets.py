"""The provider's own OpenLineage run facet; imported only where the OpenLineage client is installed.

Kept apart from :mod:`airflow_provider_userattrs.lineage`, which must import without OpenLineage: the facet
class subclasses the client's ``RunFacet`` at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr
from openlineage.client.facet_v2 import RunFacet

from airflow_provider_userattrs import __version__

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"
"""No schema of this facet is published: it declares itself a plain custom run facet."""


@attr.define
class UserAttrsSyncRunFacet(RunFacet):
    """The counts of a sync's report (``succeeded + failed == total``), and its error when the task failed.

    Only counts and the error text: no user ids, values, reasons or connection fields.
    """

    vendor: str
    conn_id: str
    total: int | None = attr.field(default=None)
    succeeded: int | None = attr.field(default=None)
    failed: int | None = attr.field(default=None)
    retryable_users: int | None = attr.field(default=None)
    dry_run: bool = attr.field(default=False)
    providerVersion: str = attr.field(default=__version__)  # OpenLineage's camelCase
    error: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL


def sync_run_facet(vendor: str, conn_id: str, report: Mapping[str, Any] | None, failed: bool) -> UserAttrsSyncRunFacet:
    """The facet of a finished try; on failure ``error`` says why, with the counts when there was a report."""
    report = report or {}
    counts = {key: _int(report.get(key)) for key in ("total", "succeeded", "failed", "retryable_users")}
    return UserAttrsSyncRunFacet(
        vendor=vendor,
        conn_id=conn_id,
        total=counts["total"],
        succeeded=counts["succeeded"],
        failed=counts["failed"],
        retryable_users=counts["retryable_users"],
        dry_run=bool(report.get("dry_run")),
        error=_error_text(report, counts) if failed else None,
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _error_text(report: Mapping[str, Any], counts: Mapping[str, int | None]) -> str:
    if report.get("error"):
        return str(report["error"])
    if counts["total"] is None:
        return "the task failed before it had a report"
    text = f"{counts['failed']} of {counts['total']} users failed"
    if counts["retryable_users"]:
        text += f" ({counts['retryable_users']} transiently, resent by the next try)"
    return text
