"""The vendor client: AltaTech, Fyno, DX and User.com from a plain Python script, no Airflow needed.

It imports nothing from Airflow (a test runs it where ``apache-airflow`` is not installed); the hooks in
:mod:`airflow_provider_userattrs.hooks` only turn an Airflow connection into one, as the Slack provider's
hook turns one into a ``slack_sdk`` client::

    from airflow_provider_userattrs.client import connect
    from airflow_provider_userattrs.results import UserUpdate

    with connect("dx", token="...", quota_requests=1000, quota_window_seconds=60) as dx:
        for user in dx.update_users(UserUpdate(row["email"], row) for row in rows):
            if not user.ok:
                print(user.user_id, [(f.attribute, f.reason) for f in user.failures])

``settings`` are the connection extras of the hooks (same names, defaults and checks:
:class:`~airflow_provider_userattrs.config.HookSettings`).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_userattrs import __version__
from airflow_provider_userattrs.client.clock import Clock, SystemClock
from airflow_provider_userattrs.client.core import Client
from airflow_provider_userattrs.client.pacing import Pacer, Quota
from airflow_provider_userattrs.client.sender import ClientStats, Sender
from airflow_provider_userattrs.client.shared_quota import SharedQuota, account_key, shown_url
from airflow_provider_userattrs.client.shared_quota import connect as connect_store
from airflow_provider_userattrs.client.transport import Transport, Urllib3Transport
from airflow_provider_userattrs.client.urls import check_base_url
from airflow_provider_userattrs.client.vendor import VendorApi
from airflow_provider_userattrs.client.vendors import VENDORS, vendor_api
from airflow_provider_userattrs.config import HookSettings, parse_settings
from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.results import UserResult, UserUpdate

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-userattrs/{__version__}"

__all__ = [
    "USER_AGENT",
    "VENDORS",
    "Client",
    "ClientStats",
    "UserResult",
    "UserUpdate",
    "VendorApi",
    "build",
    "connect",
    "declared_quota",
    "vendor_api",
]


def connect(
    vendor: str,
    *,
    base_url: str | None = None,
    token: str,
    name: str = "client",
    defer_long_waits: bool = False,
    clock: Clock | None = None,
    transport: Transport | None = None,
    **settings: Any,
) -> Client:
    """A client for ``vendor`` (``"altatech"``, ``"fyno"``, ``"dx"`` or ``"usercom"``).

    :param base_url: the API base URL (default the vendor's public one; User.com needs the app's URL).
    :param token: the API key or token (sent only in headers, never in a message).
    :param name: how messages name these credentials, e.g. ``connection 'dx_default'``.
    :param defer_long_waits: a wait for the quota longer than ``defer_after`` is not slept: the users held
        back come back ``POSTPONED`` with the time they may go (``AttributeResult.not_before``).
    :param clock: time as the pacing sees it (tests pass a fake one).
    :param transport: the HTTP transport (tests pass a fake one); default a pooled urllib3 transport.
    :param settings: the tuning settings (``concurrency``, ``quota_requests``, ``workspace_id``...).
    :raises ConnectionConfigError: a setting, URL or token that can never work, naming what to fix.
    """
    api = vendor_api(vendor)
    where = f"{api.label} {name}"
    if not token:
        raise ConnectionConfigError(f"{where} has no API token: put it in the password field")
    checked = parse_settings({}, settings, where=where, overrides_name="connect()")
    return build(
        api, base_url, token, checked, name=name, defer_long_waits=defer_long_waits, clock=clock, transport=transport
    )


def build(
    api: VendorApi,
    base_url: str | None,
    token: str,
    settings: HookSettings,
    *,
    name: str,
    defer_long_waits: bool = False,
    clock: Clock | None = None,
    transport: Transport | None = None,
    default_quota_store: str | None = None,
) -> Client:
    """A client from settings already checked (the hooks parse a connection's extras themselves).

    :param default_quota_store: a store the deployment already has (the hooks pass Airflow's Celery broker
        when it is a Redis), used for a declared quota when the settings name no ``quota_store``; one that
        cannot be used is skipped with a warning (a store the settings name is a configuration error).
    """
    where = f"{api.label} {name}"
    url = check_base_url(
        base_url,
        default=api.default_host,
        placeholder=api.host_placeholder,
        where=where,
        allow_insecure_http=settings.allow_insecure_http,
        verify_ssl=settings.verify_ssl,
    )
    url += api.api_root(settings, where)
    clock = clock or SystemClock()
    if transport is None:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        headers.update(api.headers(token))
        transport = Urllib3Transport(
            url, headers, maxsize=settings.concurrency, verify=settings.verify_ssl, label=api.label
        )
    quota = declared_quota(api, settings, url)
    pacer = Pacer(
        clock=clock,
        requests_per_second=settings.requests_per_second,
        quota=quota,
        announces_budget=api.announces_budget,
        defer_after=settings.defer_after,
        shared=_shared_quota(api, url, token, settings, quota, where, default_quota_store),
    )
    sender = Sender(transport, api, url, settings, pacer, clock, api.label, defer_long_waits=defer_long_waits)
    return Client(api, sender, settings, name=name, secrets=(token,))


def declared_quota(api: VendorApi, settings: HookSettings, base_url: str | None = None) -> Quota | None:
    """The quota the client paces to: the settings' (``quota_requests`` 0: none), else the vendor's published one
    (DX's 1,000 a minute) for a client of the vendor's own API (``base_url`` its default host); a sandbox, mock or
    proxy declares its own."""
    if settings.quota_requests == 0:
        return None
    if settings.quota_requests and settings.quota_window_seconds:
        return Quota(settings.quota_requests, settings.quota_window_seconds)
    published: tuple[int, float] | None = getattr(api, "published_quota", None)
    own_api = base_url is None or (api.default_host is not None and base_url.rstrip("/") == api.default_host)
    return Quota(*published) if published is not None and own_api else None


def _shared_quota(
    api: VendorApi,
    url: str,
    token: str,
    settings: HookSettings,
    quota: Quota | None,
    where: str,
    default_store: str | None,
) -> SharedQuota | None:
    named = (settings.quota_store or "").strip()
    if named.lower() == "none" or not (named or default_store):
        return None
    if quota is None:
        if not named:
            return None  # the deployment's store paces declared quotas only
        raise ConnectionConfigError(
            f"{where}: quota_store needs a declared quota (quota_requests and quota_window_seconds)"
        )
    account = account_key(api.name, url, token)
    store = connect_store(
        named or str(default_store), account, quota.requests, quota.window_seconds, required=bool(named), where=where
    )
    if store is not None and not named:
        log.info(
            "%s: %d requests per %g s paced account-wide in the deployment's Redis %s (the Celery broker); "
            "quota_store 'none' turns it off",
            where,
            quota.requests,
            quota.window_seconds,
            shown_url(str(default_store)),
        )
    return store
