"""A Slack incoming webhook on a free loopback port that keeps what it is sent: enough for Airflow's Slack provider.

It answers every ``POST`` with ``200 ok``, as Slack does, and records the request (path, headers, JSON body). It runs
an HTTP server in a thread of its own; every wait on it is bounded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.inbox import Inbox


@dataclass(frozen=True)
class Posted:
    """One request as the server got it."""

    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        assert isinstance(value, dict), value
        return value

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")


class WebhookSink(Inbox[Posted]):
    def __init__(self) -> None:
        super().__init__()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name for the POST handler
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                sink.received.put(Posted(self.path, dict(self.headers.items()), raw))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads what matters
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self, token: str) -> dict[str, Any]:
        """An Airflow ``slackwebhook`` connection (as ``AIRFLOW_CONN_*`` JSON) to this server: the endpoint in
        ``host``, the webhook token (``T0/B0/XXXX``, the secret part of a webhook URL) in ``password``."""
        return {"conn_type": "slackwebhook", "host": f"{self.url}/services", "password": token}
