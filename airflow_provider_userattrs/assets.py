"""The vendor dataset as an Airflow asset: ``userattrs://<vendor>/<conn_id>``, and the event a sync emits on it.

Why an alias: the vendor is the connection's *type*, known only once the task runs (the connection may even be
templated), so no sync operator can name its asset at parse time. Each one lists the alias
:data:`SYNC_ALIAS_NAME` in its ``outlets`` and, on success, attaches the event to the concrete asset through
``outlet_events[alias].add(asset, extra=...)``: Airflow then creates the asset if needed, records the event and
queues the DAGs scheduled on it.

Which asset: the one Airflow already knows for the URI. Airflow keeps an asset *active* while a DAG uses it (a
schedule, inlets or outlets); an event on an asset it does not know is still recorded, but logs "Emitting event
for inactive AssetModel" once per event (83 lines for the 83 chunks of a mapped sync). So the event goes, in
order of preference:

1. on the asset itself when the task declares it in its ``outlets`` (the way Airflow expects a producer to name
   what it writes; possible when the DAG knows the connection): Airflow records that event, with the report's
   extra, and no alias event doubles it;
2. through the alias onto the asset Airflow knows by this URI, under the name it was declared with (a consumer
   may name it: ``Asset(name="crm users", uri="userattrs://dx/dx_default")``), looked up with
   ``outlet_events[Asset.ref(uri=...)]``: no warning, and that consumer is queued;
3. through the alias onto ``userattrs://<vendor>/<conn_id>`` when no DAG uses it yet (Airflow creates it; 3.3's
   scheduler activates it after the first event; earlier lines warn as above until a DAG uses it).

The provider metadata registers the ``userattrs`` scheme with :func:`sanitize_uri` (normaliser),
:func:`create_asset` (factory) and :func:`convert_asset_to_openlineage`, so that the asset and the OpenLineage
output of :mod:`airflow_provider_userattrs.lineage` name the same dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

from airflow.sdk import Asset, AssetAlias

from airflow_provider_userattrs.compat import alias_event_extra

if TYPE_CHECKING:
    from openlineage.client.event_v2 import Dataset as OpenLineageDataset

log = logging.getLogger(__name__)

SCHEME = "userattrs"
VENDORS = ("altatech", "fyno", "dx", "usercom")
"""The connection types of the provider; the vendor part of every ``userattrs://`` URI is one of them."""
SYNC_ALIAS_NAME = "userattrs_sync"
"""The asset alias every sync task lists in its outlets (see the module's docstring)."""
_told_unknown: set[str] = set()

__all__ = [
    "SCHEME",
    "SYNC_ALIAS_NAME",
    "SyncEventExtra",
    "asset_uri",
    "convert_asset_to_openlineage",
    "create_asset",
    "declared_outlet",
    "emit_sync_event",
    "known_asset",
    "sanitize_uri",
    "vendor_dataset",
    "with_sync_alias",
]


def asset_uri(vendor: str, conn_id: str) -> str:
    """``userattrs://<vendor>/<conn_id>``, the connection id percent-encoded where it needs to be."""
    return f"{SCHEME}://{vendor.lower()}/{quote(conn_id, safe='')}"


def vendor_dataset(vendor: str, conn_id: str) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of a vendor dataset: ``userattrs://<vendor>`` and ``<conn_id>``."""
    return f"{SCHEME}://{vendor.lower()}", conn_id


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise a ``userattrs://`` URI, or refuse it (``ValueError``: the DAG file fails to import).

    Airflow has already lowercased the scheme, sorted the query and dropped the fragment. Here the vendor is
    lowercased and must be one of :data:`VENDORS`, and the path must be exactly one connection id: a typo such
    as ``userattrs://dx_default`` would otherwise name an asset no sync ever emits.
    """
    vendor = (uri.hostname or "").lower()
    if uri.username or uri.password or uri.port is not None:
        raise ValueError(f"a {SCHEME}:// URI has no user, password or port: {SCHEME}://<vendor>/<conn_id>")
    if vendor not in VENDORS:
        raise ValueError(f"{SCHEME}:// URI: vendor {vendor or '(none)'!r} is not one of {', '.join(VENDORS)}")
    parts = [p for p in uri.path.split("/") if p]
    if len(parts) != 1:
        raise ValueError(f"a {SCHEME}:// URI names one connection: {SCHEME}://{vendor}/<conn_id>, got {uri.path!r}")
    conn_id = quote(unquote(parts[0]), safe="")
    return uri._replace(netloc=vendor, path=f"/{conn_id}", query="", fragment="")


def create_asset(*, vendor: str, conn_id: str, extra: dict[str, Any] | None = None) -> Asset:
    """The asset of a vendor connection (the ``factory`` of the provider's ``asset-uris``)."""
    return Asset(uri=asset_uri(vendor, conn_id), extra=extra or {})


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> OpenLineageDataset:
    """The OpenLineage dataset of a ``userattrs://`` asset: the same one the operators' lineage outputs."""
    from openlineage.client.event_v2 import Dataset as OpenLineageDataset

    parsed = urlsplit(asset.uri)
    namespace, name = vendor_dataset(parsed.hostname or "", unquote(parsed.path.strip("/")))
    return OpenLineageDataset(namespace=namespace, name=name)


def with_sync_alias(outlets: Any) -> list[Any]:
    """``outlets`` (None, one object or a list) with the sync alias added once."""
    items = list(outlets) if isinstance(outlets, list | tuple) else ([] if outlets is None else [outlets])
    if not any(isinstance(o, AssetAlias) and o.name == SYNC_ALIAS_NAME for o in items):
        items.append(AssetAlias(SYNC_ALIAS_NAME))
    return items


@dataclass(frozen=True)
class SyncEventExtra:
    """What a sync's asset event says: the report's counts and the attribute names, nothing else.

    No values, no user ids, no connection fields: the extra is visible to anyone who can read the asset.
    """

    vendor: str
    conn_id: str
    total: int
    succeeded: int
    failed: int
    attributes: tuple[str, ...]

    @classmethod
    def from_report(cls, report: Mapping[str, Any], attributes: Sequence[str]) -> SyncEventExtra:
        return cls(
            vendor=str(report["vendor"]),
            conn_id=str(report["conn_id"]),
            total=int(report.get("total", 0)),
            succeeded=int(report.get("succeeded", 0)),
            failed=int(report.get("failed", 0)),
            attributes=tuple(attributes),
        )

    def to_extra(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "conn_id": self.conn_id,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "attributes": list(self.attributes),
        }


def emits_event(report: Mapping[str, Any]) -> bool:
    """A dry run sent nothing and a task that stopped on an error delivered nothing it can vouch for."""
    return not report.get("dry_run") and "error" not in report


def emit_sync_event(task: Any, context: Mapping[str, Any], report: Mapping[str, Any]) -> Asset | None:
    """Record this task's event on ``userattrs://<vendor>/<conn_id>`` (see the module's docstring for which way).

    ``task`` is the sync operator (a :class:`~airflow_provider_userattrs.attribute_sources.SyncTask`): the
    event names the attributes it says it sent. Called by the operator once the task has passed its verdict
    (a failed task emits nothing: Airflow drops the events of a task that does not succeed). The alias is
    added to ``task.outlets`` when it is missing (a task built before the alias existed, or whose outlets
    were replaced), since Airflow only records alias events for aliases the task lists.

    :return: the asset the event went to, or None when there is none (a dry run, an error, no task runner).
    """
    if not emits_event(report):
        return None
    if "outlet_events" not in context:  # executed outside Airflow's task runner (a script, a test): no event
        log.debug("no outlet_events in the context: no asset event")
        return None
    sent = task.attribute_sources(query_columns=True).names  # the explicit attributes, else the source's
    extra = SyncEventExtra.from_report(report, sent).to_extra()
    asset = create_asset(vendor=extra["vendor"], conn_id=extra["conn_id"])
    outlet_events = context["outlet_events"]
    declared = declared_outlet(task.outlets, asset.uri)
    if declared is not None:
        outlet_events[declared].extra = extra  # Airflow records the declared outlet's event on success
        target = declared
    else:
        known = known_asset(outlet_events, asset)
        if known is None and asset.uri not in _told_unknown:
            _told_unknown.add(asset.uri)  # once per process: a mapped sync's chunks would repeat it
            log.info(
                "No DAG uses %s yet: Airflow records the event on an asset it does not know (schedule a DAG on "
                "it, or list it in the task's outlets, to make it known)",
                asset.uri,
            )
        target = known or asset
        task.outlets = with_sync_alias(task.outlets)
        outlet_events[AssetAlias(SYNC_ALIAS_NAME)].add(target, extra=alias_event_extra(extra))
    log.info("Asset event on %s: %s of %s users delivered", target.uri, extra["succeeded"], extra["total"])
    return target


def declared_outlet(outlets: Any, uri: str) -> Asset | None:
    """The asset of ``uri`` when the task lists it in its outlets."""
    items = outlets if isinstance(outlets, list | tuple) else [outlets]
    return next((o for o in items if isinstance(o, Asset) and o.uri == uri), None)


def known_asset(outlet_events: Any, asset: Asset) -> Asset | None:
    """The asset Airflow knows (an active one) with ``asset``'s URI, under its declared name; None if none.

    ``outlet_events[Asset.ref(uri=...)]`` is the Task SDK's own lookup of an active asset (it raises when there is
    none); reading the accessor records no event.
    """
    try:
        key = outlet_events[Asset.ref(uri=asset.uri)].key
    except Exception:  # no active asset with this URI (or a runtime without the lookup)
        return None
    name, uri = getattr(key, "name", None), getattr(key, "uri", None)
    if not name or uri != asset.uri:
        return None
    return asset if name == asset.name else Asset(name=name, uri=uri)
