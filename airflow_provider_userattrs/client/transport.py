"""The HTTP transport: one pooled urllib3 ``PoolManager`` per hook.

urllib3 directly, not ``requests``: measured on the sandbox, requests' per-request machinery (settings
merging, hooks, cookie jars, response models) cost twice the CPU of the request itself, and a sync is
CPU-bound in the client long before the vendor notices. urllib3's own retries are off (they skip POST
unless told otherwise, and cannot honour a vendor's pace): the client's sender retries instead.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from airflow_provider_userattrs.errors import TransientVendorError


@dataclass(frozen=True)
class HttpResponse:
    """What the vendor answered: status, headers (case-insensitive) and the raw body."""

    status: int
    headers: Any
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON (HTML error pages, truncated bodies, nothing)."""
        return self.parsed

    @functools.cached_property
    def parsed(self) -> Any:
        """The body parsed once (the sender and the answer's reader both look at it)."""
        if not self.data:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class Transport(Protocol):
    """Sends one request; raises :class:`TransientVendorError` when no answer came back."""

    def request(self, method: str, url: str, body: bytes, timeout: tuple[float, float]) -> HttpResponse: ...

    def close(self) -> None: ...


class Urllib3Transport:
    """A thread-safe pool of keep-alive connections, sized to the client's concurrency."""

    def __init__(self, base_url: str, headers: dict[str, str], *, maxsize: int, verify: bool, label: str) -> None:
        self.label = label
        kwargs: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": maxsize,
            "block": True,
            "retries": False,
            "headers": headers,
        }
        if urlsplit(base_url).scheme == "https":
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
            kwargs["cert_reqs"] = "CERT_REQUIRED" if verify else "CERT_NONE"
            if verify and ca_bundle:
                kwargs["ca_certs"] = ca_bundle
            if not verify:
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        proxy = _proxy_for(base_url)
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **kwargs) if proxy else urllib3.PoolManager(**kwargs)
        )

    def request(self, method: str, url: str, body: bytes, timeout: tuple[float, float]) -> HttpResponse:
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                redirect=False,
                preload_content=True,
            )
        except NewConnectionError as exc:
            # Checked first: urllib3 makes it a kind of ConnectTimeoutError, but a refused connection is no timeout.
            raise TransientVendorError(f"{self.label} connection failed ({_cause(exc)})") from None
        except TimeoutError as exc:
            raise TransientVendorError(f"{self.label} did not answer in time ({type(exc).__name__})") from None
        except HTTPError as exc:
            raise TransientVendorError(f"{self.label} connection failed ({type(exc).__name__})") from None
        return HttpResponse(response.status, response.headers, response.data or b"")

    def close(self) -> None:
        self._pool.clear()


def _cause(exc: Exception) -> str:
    """The reason without the URL (which holds nothing secret, but makes reasons unique per user)."""
    text = str(exc)
    return text.split(": ", 1)[-1][:120] if ": " in text else type(exc).__name__


def _proxy_for(url: str) -> str | None:
    """The proxy from the environment (HTTPS_PROXY, NO_PROXY...), looked up once per hook."""
    host = urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(urlsplit(url).scheme)
