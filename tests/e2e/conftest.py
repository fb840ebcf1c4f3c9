"""The end-to-end stack and the headless browser, shared by every e2e module: the stack starts ONCE per session.

``scripts/e2e_stack.py`` starts the deployment (about 3 minutes on 2 cores); starting it per module would multiply
that. Playwright drives Debian's Chromium (no download). Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"


def _load_stack_module() -> Any:
    if "e2e_stack" in sys.modules:
        return sys.modules["e2e_stack"]
    spec = importlib.util.spec_from_file_location("e2e_stack", REPO_ROOT / "scripts" / "e2e_stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_stack"] = module
    spec.loader.exec_module(module)
    return module


e2e_stack = _load_stack_module()


def _unavailable(problem: str) -> None:
    if os.environ.get("USERATTRS_REQUIRE_E2E") == "1":
        pytest.fail(f"USERATTRS_REQUIRE_E2E=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    """The whole deployment, started once for the session and always torn down (also when a test fails)."""
    for check in (e2e_stack.postgres_problem, e2e_stack.redis_problem, e2e_stack.celery_provider_problem):
        problem = check()
        if problem:
            _unavailable(problem)
    shutil.rmtree(ARTIFACTS / "logs", ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    deployment = e2e_stack.AirflowStack(users=2000, keep_logs_in=ARTIFACTS / "logs")
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:  # a CI timeout's SIGTERM: tear down like Ctrl-C, not die leaving it all
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        deployment.start()
        yield deployment
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            deployment.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def sandbox(stack: Any) -> Any:
    from airflow_provider_userattrs.sandbox import SandboxClient

    return SandboxClient(stack.sandbox_url)


def find_chromium() -> str | None:
    """Debian's Chromium (Playwright drives it; no ``playwright install`` download), or $USERATTRS_CHROMIUM."""
    candidates = [os.environ.get("USERATTRS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    candidates += [shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="session")
def browser(stack: Any) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc})")
    chromium = find_chromium()
    if chromium is None:
        _unavailable("no Chromium (/usr/bin/chromium, $USERATTRS_CHROMIUM): run bash scripts/install-chromium.sh")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, stack: Any) -> Iterator[Any]:
    """A logged-in page (SimpleAuthManager's login form)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(stack.api_url + "/")
        page.get_by_label("Username").fill(stack.username)
        page.get_by_label("Password").fill(stack.password)
        page.get_by_role("button", name=re.compile(r"sign in|log ?in", re.I)).click()
        page.wait_for_url(re.compile(r"^[^?]*/$"))
        page.get_by_role("button", name="Admin").wait_for()
        yield page
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
