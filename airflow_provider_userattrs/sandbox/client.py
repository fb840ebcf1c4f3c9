"""Steer and inspect a sandbox running in another process (the demo, benchmarks, docker-compose)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterable
from typing import Any


class SandboxClient:
    """The same operations as :class:`~.server.SandboxServer`, over the ``/_sandbox/`` endpoints."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_sandbox/{name}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"null")

    def health(self) -> bool:
        try:
            return bool(self._call("GET", "health").get("status") == "ok")
        except OSError:
            return False

    def wait_until_up(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.health():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sandbox at {self.url} did not answer within {timeout:.0f} s")
            time.sleep(0.1)

    def state(self, vendor: str) -> dict[str, Any]:
        return dict(self._call("GET", f"state?vendor={vendor}"))

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def requests(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._call("GET", f"requests?limit={limit}"))

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def set_faults(self, **faults: Any) -> None:
        self._call("POST", "faults", faults)

    def script(self, steps: Iterable[dict[str, Any]]) -> None:
        self._call("POST", "script", {"steps": list(steps)})

    def register_unknown_users(self, vendor: str, user_ids: Iterable[Any]) -> None:
        self._call("POST", "unknown_users", {"vendor": vendor, "user_ids": list(user_ids)})

    def declare_usercom_attributes(self, names: Iterable[str] | None, *, replace: bool = False) -> list[str] | None:
        """Create custom attributes in the User.com app; ``None`` accepts any name (the check off)."""
        body = {"attributes": None if names is None else list(names), "replace": replace}
        answer = self._call("POST", "usercom_attributes", body)["attributes"]
        return None if answer is None else list(answer)

    def usercom_attributes(self) -> list[str] | None:
        answer = self._call("GET", "usercom_attributes")["attributes"]
        return None if answer is None else list(answer)

    def set_answer_shapes(self, **shapes: str) -> dict[str, str]:
        """E.g. ``set_answer_shapes(fyno_batch="batch", dx_failures="names")``; see :class:`~.state.AnswerShapes`."""
        return dict(self._call("POST", "shapes", shapes))
