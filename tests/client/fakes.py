"""Fakes of the client's seams: a clock that only moves when code sleeps, and a transport answering per route.

Answers are registered per (method, URL). Where calls run concurrently, a test must make the answer depend on
the request (a callback reading its body), never on the order calls arrive in.
"""

from __future__ import annotations

import json as _json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from urllib3 import HTTPHeaderDict

from airflow_provider_userattrs.client.transport import HttpResponse
from airflow_provider_userattrs.errors import TransientVendorError

TOKEN = "unit-test-token-0123456789"


class FakeClock:
    """Time that only moves when the code under test sleeps: retries are checked without waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@dataclass
class SentRequest:
    method: str
    url: str
    body: bytes


@dataclass
class Sent:
    request: SentRequest


Answer = HttpResponse | Exception | Callable[[SentRequest], tuple[int, dict[str, str], str]]


@dataclass
class FakeTransport:
    """Stands in for the urllib3 pool: answers registered per (method, URL), in order, last one repeats."""

    routes: list[tuple[str, re.Pattern[str], list[Answer]]] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)
    calls: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, url: str | re.Pattern[str], answer: Answer) -> None:
        pattern = url if isinstance(url, re.Pattern) else re.compile(re.escape(url) + "$")
        for route_method, route_pattern, answers in self.routes:
            if route_method == method and route_pattern.pattern == pattern.pattern:
                answers.append(answer)
                return
        self.routes.append((method, pattern, [answer]))

    def post(
        self,
        url: str | re.Pattern[str],
        *,
        status: int = 200,
        json: Any = None,
        body: str | Exception | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if isinstance(body, Exception):
            self.add("POST", url, body)
            return
        text = body if body is not None else (_json.dumps(json) if json is not None else "")
        all_headers = HTTPHeaderDict({"Content-Type": content_type, **(headers or {})})
        self.add("POST", url, HttpResponse(status, all_headers, text.encode()))

    def add_callback(self, method: str, url: str, callback: Callable[[SentRequest], Any]) -> None:
        self.add(method, url, callback)

    def request(self, method: str, url: str, body: bytes, timeout: tuple[float, float]) -> HttpResponse:
        sent = SentRequest(method, url, body)
        with self.lock:
            self.calls.append(Sent(sent))
            for route_method, pattern, answers in self.routes:
                if route_method == method and pattern.match(url):
                    count = self.served.get(pattern.pattern, 0)
                    self.served[pattern.pattern] = count + 1
                    answer = answers[min(count, len(answers) - 1)]
                    break
            else:
                raise AssertionError(f"no fake answer for {method} {url}")
        if isinstance(answer, TransientVendorError):
            raise answer
        if isinstance(answer, Exception):
            raise TransientVendorError(f"connection failed ({type(answer).__name__})")
        if callable(answer):
            status, headers, text = answer(sent)
            return HttpResponse(status, HTTPHeaderDict(headers), text.encode())
        return answer

    def close(self) -> None:
        pass
