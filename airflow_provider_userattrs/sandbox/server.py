"""A small, fast HTTP/1.1 server for the four vendor APIs, with fault injection and inspection.

Written on ``socketserver`` rather than ``http.server``: header parsing through ``email`` cost more than
the vendor logic, and benchmarks must measure the client, not the sandbox. Each answer leaves in one
``sendall`` with TCP_NODELAY, so no client waits on Nagle's algorithm and delayed ACKs (a 40 ms stall
per request otherwise).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterable
from email.utils import formatdate
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_userattrs.sandbox import vendors
from airflow_provider_userattrs.sandbox.state import AnswerShapes, SandboxState

log = logging.getLogger(__name__)

REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_BODY = 64 * 1024 * 1024
CONTROL_PREFIX = "/_sandbox/"


class _Headers(dict[str, str]):
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class _Handler(socketserver.StreamRequestHandler):
    """One keep-alive connection; requests are served one after another on it."""

    server: _Server
    rbufsize = 64 * 1024

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            while self._serve_one():
                pass
        except (ConnectionError, TimeoutError, OSError):
            pass

    def _serve_one(self) -> bool:
        line = self.rfile.readline(65537)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            self._send(400, {"error": "bad request line"}, keep_alive=False)
            return False
        headers = _Headers()
        while True:
            raw = self.rfile.readline(65537)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"}, keep_alive=False)
            return False
        data = self.rfile.read(length) if length else b""
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        parts = urlsplit(target)
        if parts.path.startswith(CONTROL_PREFIX):
            status, body = self.server.control(method, parts.path, parse_qs(parts.query), data)
            self._send(status, body, keep_alive=keep_alive)
            return keep_alive
        return self._vendor_request(method, parts.path, headers, data, keep_alive)

    def _vendor_request(self, method: str, path: str, headers: _Headers, data: bytes, keep_alive: bool) -> bool:
        state = self.server.state
        found = vendors.route_for(path)
        if found is None:
            state.record(None, method, path, 404, "authorization" in headers)
            self._send(404, {"detail": f"no such endpoint: {method} {path}"}, keep_alive=keep_alive)
            return keep_alive
        route, match = found
        authorized = "authorization" in headers
        refused = vendors.wrong_method(route, method, state)
        if refused is not None:
            status, answer = refused
            state.record(route.vendor, method, path, status, authorized)
            allow = {"Allow": ", ".join(vendors.allowed_methods(route, state))}
            if route.vendor == "altatech":
                allow.update(state.rate_limit_headers())
            self._send(status, answer, keep_alive=keep_alive, headers=allow, with_body=method != "HEAD")
            return keep_alive
        decision = state.decide(route.vendor)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.kind == "drop":
            state.record(route.vendor, method, path, "dropped", authorized)
            self._abort()
            return False
        extra: dict[str, str] = {}
        if route.vendor == "altatech":
            extra.update(state.rate_limit_headers())
        if decision.kind == "status" and not decision.apply:
            if decision.retry_after is not None:
                extra["Retry-After"] = decision.retry_after
            state.record(route.vendor, method, path, decision.status or 500, authorized)
            body: Any = {"detail": REASONS.get(decision.status or 500, "error"), "status": "error"}
            if decision.status == 429:
                body = vendors.throttled_body(route.vendor)
            elif route.vendor == "dx":
                body = {"ok": False, "error": "internal_error"}
            self._send(decision.status or 500, body, keep_alive=keep_alive, headers=extra)
            return keep_alive
        status, answer = vendors.handle(state, route, match, headers, data)
        if decision.kind == "garbage":
            state.record(route.vendor, method, path, decision.status or 200, authorized)
            self._send_raw(decision.status or 200, (decision.body or "").encode(), decision.content_type, keep_alive)
            return keep_alive
        if decision.kind == "reset":
            state.record(route.vendor, method, path, "reset", authorized)
            head = self._encode(status, answer, keep_alive=True, headers=extra)
            self.wfile.write(head[: max(1, len(head) - 5)])
            self.wfile.flush()
            self._abort()
            return False
        if decision.kind == "status":  # scripted status after applying the request
            status = decision.status or status
        state.record(route.vendor, method, path, status, authorized)
        self._send(status, answer, keep_alive=keep_alive, headers=extra)
        return keep_alive

    def _abort(self) -> None:
        """Close with a TCP reset, as a crashed proxy or a killed vendor process does."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    @staticmethod
    def _encode(status: int, body: Any, *, keep_alive: bool, headers: dict[str, str] | None = None) -> bytes:
        payload = json.dumps(body).encode()
        return _Handler._head(status, "application/json", len(payload), keep_alive, headers) + payload

    @staticmethod
    def _head(status: int, content_type: str, length: int, keep_alive: bool, headers: dict[str, str] | None) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self,
        status: int,
        body: Any,
        *,
        keep_alive: bool,
        headers: dict[str, str] | None = None,
        with_body: bool = True,
    ) -> None:
        answer = self._encode(status, body, keep_alive=keep_alive, headers=headers)
        # A HEAD answer carries the headers of the GET answer and no body (RFC 9110, 9.3.2).
        self.wfile.write(answer if with_body else answer[: answer.index(b"\r\n\r\n") + 4])

    def _send_raw(self, status: int, data: bytes, content_type: str, keep_alive: bool) -> None:
        self.wfile.write(self._head(status, content_type, len(data), keep_alive, None) + data)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def control(self, method: str, path: str, query: dict[str, list[str]], data: bytes) -> tuple[int, Any]:
        """The inspection and control endpoints under ``/_sandbox/``."""
        name = path[len(CONTROL_PREFIX) :].strip("/")
        state = self.state
        try:
            body = json.loads(data) if data else {}
            if method == "GET" and name == "health":
                return 200, {"status": "ok", "time": formatdate(usegmt=True)}
            if method == "GET" and name == "state":
                return 200, state.snapshot(query.get("vendor", [""])[0])
            if method == "GET" and name == "stats":
                return 200, state.stats()
            if method == "GET" and name == "requests":
                return 200, state.recent_requests(int(query.get("limit", ["100"])[0]))
            if method == "POST" and name == "reset":
                state.reset()
                return 200, {"status": "reset"}
            if method == "POST" and name == "faults":
                return 200, state.set_faults(body).to_dict()
            if method == "POST" and name == "script":
                return 200, {"queued": state.script(body.get("steps", body) if isinstance(body, dict) else body)}
            if method == "POST" and name == "unknown_users":
                state.register_unknown_users(body["vendor"], body["user_ids"])
                return 200, {"status": "ok"}
            if method == "GET" and name == "usercom_attributes":
                return 200, {"attributes": state.declared_usercom_attributes()}
            if method == "POST" and name == "usercom_attributes":
                names = body["attributes"]
                if isinstance(names, str):
                    raise ValueError("attributes must be a list of names (or null to turn the check off)")
                declared = state.declare_usercom_attributes(names, replace=bool(body.get("replace")))
                return 200, {"attributes": declared}
            if method == "GET" and name == "shapes":
                return 200, state.shapes.to_dict()
            if method == "POST" and name == "shapes":
                return 200, state.set_answer_shapes(body).to_dict()
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": f"no control endpoint {method} {path}"}


class SandboxServer:
    """The vendor sandbox on a real port, in a background thread of this process.

    >>> with SandboxServer(port=0) as sandbox:
    ...     sandbox.url  # 'http://127.0.0.1:<port>'

    Tests inspect and steer it directly (:meth:`state`, :meth:`stats`, :meth:`set_faults`, :meth:`script`);
    another process does the same over HTTP with :class:`~.client.SandboxClient`.

    ``usercom_attributes``: the custom attributes that exist in the User.com app. User.com refuses any other
    (seed 004), and so does the sandbox unless this is ``None``. ``answer_shapes``: which plausible shape
    the answer parts no vendor publishes take (:class:`~.state.AnswerShapes`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: Iterable[str] = ("sandbox-token",),
        fyno_workspaces: Iterable[str] = ("sandboxwsid",),
        usercom_attributes: Iterable[str] | None = (),
        answer_shapes: AnswerShapes | dict[str, str] | None = None,
    ) -> None:
        shapes = AnswerShapes.from_dict(answer_shapes) if isinstance(answer_shapes, dict) else answer_shapes
        self.memory = SandboxState(tokens, fyno_workspaces, usercom_attributes, shapes)
        self._server = _Server((host, port), self.memory)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="userattrs-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the same operations as SandboxClient ----------------------------------------------------------

    def state(self, vendor: str) -> dict[str, Any]:
        return self.memory.snapshot(vendor)

    def stats(self) -> dict[str, Any]:
        return self.memory.stats()

    def requests(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.memory.recent_requests(limit)

    def reset(self) -> None:
        self.memory.reset()

    def set_faults(self, **faults: Any) -> None:
        self.memory.set_faults(faults)

    def script(self, steps: Iterable[dict[str, Any]]) -> None:
        self.memory.script(steps)

    def register_unknown_users(self, vendor: str, user_ids: Iterable[Any]) -> None:
        self.memory.register_unknown_users(vendor, user_ids)

    def declare_usercom_attributes(self, names: Iterable[str] | None, *, replace: bool = False) -> list[str] | None:
        """Create custom attributes in the User.com app; ``None`` accepts any name (the check off)."""
        return self.memory.declare_usercom_attributes(names, replace)

    def usercom_attributes(self) -> list[str] | None:
        return self.memory.declared_usercom_attributes()

    def set_answer_shapes(self, **shapes: str) -> dict[str, str]:
        """E.g. ``set_answer_shapes(fyno_batch="batch", dx_failures="names")``; see :class:`~.state.AnswerShapes`."""
        return self.memory.set_answer_shapes(shapes).to_dict()
