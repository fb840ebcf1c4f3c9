"""The API base URL: checked once, before any request, so that a URL that can never work fails at once."""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from airflow_provider_userattrs.errors import ConnectionConfigError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def compose(host: str | None, port: int | None = None, schema: str | None = None) -> str | None:
    """A base URL from an Airflow connection's fields: ``host`` may hold a whole URL or a bare host name."""
    raw = (host or "").strip().rstrip("/")
    if not raw:
        return None
    if "://" not in raw:
        raw = f"{schema or 'https'}://{raw}"
    parts = urlsplit(raw)
    if port and parts.hostname and parts.port is None:
        raw = raw.replace(parts.netloc, f"{parts.netloc}:{port}", 1)
    return raw


def check_base_url(
    raw: str | None,
    *,
    default: str | None,
    placeholder: str,
    where: str,
    allow_insecure_http: bool,
    verify_ssl: bool,
) -> str:
    """``raw`` (or ``default``) as a usable base URL without a trailing slash.

    :param where: names the client in errors (e.g. ``DX connection 'dx_default'``).
    :raises ConnectionConfigError: no URL, not http(s), or plain http to a host that is not loopback
        without ``allow_insecure_http`` (the token would travel in clear).
    """
    url = compose(raw) or compose(default)
    if not url:
        raise ConnectionConfigError(f"{where} needs a host (the API base URL, e.g. {placeholder})")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionConfigError(f"{where}: bad host URL {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConnectionConfigError(
            f"{where}: plain http:// is only allowed to loopback hosts (the token would travel in clear); use "
            "https:// or set the extra allow_insecure_http"
        )
    if not verify_ssl:
        log.warning("%s: TLS certificate verification is OFF", where)
    return url
