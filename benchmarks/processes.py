"""Where a case runs: a child forked from the warmed-up benchmark process, or a fresh interpreter."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.environment import progress
from benchmarks.measure import peak_rss_mb
from benchmarks.settings import REPO

RESULT_PREFIX = "BENCH-RESULT "

log = logging.getLogger("benchmarks")


def _child_main(sender: Any, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        result["peak_rss_mb"] = peak_rss_mb()
        sender.send(("ok", result))
    except BaseException:
        sender.send(("error", traceback.format_exc(limit=6)))
    finally:
        sender.close()
        os._exit(0)  # skip the parent's atexit handlers (temporary directories, logging)


def run_child(fn: Callable[..., dict[str, Any]], *args: Any, timeout: float = 1800.0) -> dict[str, Any]:
    """Run ``fn(*args)`` in a child forked from this (already warmed-up) process; its dict, or ``error``."""
    return run_children(fn, [args], timeout=timeout)[0]


def run_children(
    fn: Callable[..., dict[str, Any]], arg_lists: Sequence[tuple[Any, ...]], timeout: float = 1800.0
) -> list[dict[str, Any]]:
    """Run ``fn`` once per argument tuple, all at the same time, each in its own forked child."""
    if threading.active_count() > 1:
        log.warning("forking with %d threads alive", threading.active_count())
    ctx = multiprocessing.get_context("fork")
    children = []
    for args in arg_lists:
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_child_main, args=(sender, fn, args))
        process.start()
        sender.close()
        children.append((process, receiver, args))
    deadline = time.monotonic() + timeout
    results: list[dict[str, Any]] = []
    for process, receiver, args in children:
        status, payload = _answer(process, receiver, deadline, timeout)
        if status != "ok":
            progress(f"  ERROR in {fn.__name__}{args}: {payload}")
            results.append({"error": str(payload).strip().splitlines()[-1]})
        else:
            results.append(dict(payload))
    return results


def _answer(process: Any, receiver: Any, deadline: float, timeout: float) -> tuple[str, Any]:
    """A child's ``(status, payload)``, killing it past the deadline."""
    try:
        if not receiver.poll(max(0.0, deadline - time.monotonic())):
            process.kill()
            return "error", f"timed out after {timeout:.0f} s"
        status, payload = receiver.recv()
        return status, payload
    except EOFError:
        return "error", "the child process died without an answer"
    finally:
        process.join(30)
        receiver.close()


def run_worker(spec: dict[str, Any], env: dict[str, str], timeout: float = 1800.0) -> dict[str, Any]:
    """``python -m benchmarks.run --worker SPEC`` in a fresh interpreter: the dict it printed, or ``error``."""
    command = [sys.executable, "-m", "benchmarks.run", "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    progress(f"  ERROR in worker {spec}: {' | '.join(tail)}")
    return {"error": tail[-1] if tail else f"exit code {done.returncode}"}


def module_markdown(module: str, users: int) -> tuple[str | None, str]:
    """Run ``python -m <module> --users N --out FILE`` in a fresh interpreter: its markdown, or None and why."""
    out = Path(tempfile.mkstemp(suffix=".md")[1])
    command = [sys.executable, "-m", module, "--users", str(users), "--out", str(out)]
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    text = out.read_text() if done.returncode == 0 else None
    out.unlink()
    return text, f"Failed: {done.stderr[-800:]}"
