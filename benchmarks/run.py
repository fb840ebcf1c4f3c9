"""Benchmarks of the provider's hooks against the vendor sandbox, beside the code people write instead.

    bash scripts/benchmarks.sh                        # installs matplotlib and dlt, then the default run
    python -m benchmarks.run --quick                  # small sizes: a smoke run of every scenario
    python -m benchmarks.run --scenarios 1,4 --out /tmp/b.md

Every figure in the report comes from the run that writes it; nothing is carried over or typed in.

How it measures:

* the sandbox runs in its own process (``python -m airflow_provider_userattrs.sandbox``), so that client and
  server never share a GIL; it is reset, and given the case's faults, before every case;
* each case runs in a child forked from this process once Airflow and the provider are imported: imports are
  not timed, and the child's peak RSS (``ru_maxrss``, which starts from the RSS at fork time) is its own.
  Warehouse streaming cases run in fresh interpreters instead (``--worker``), one per size;
* wall time is ``time.perf_counter`` around the work only; over the same span the client's CPU time
  (``getrusage``, all threads) and the sandbox process's (``/proc/<pid>/stat``) tell who was busy.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import baselines as bl

REPO = Path(__file__).resolve().parents[1]
CONN_IDS = {vendor: f"bench_{vendor}" for vendor in bl.VENDORS}
LABELS = {"altatech": "AltaTech", "fyno": "Fyno", "dx": "DX", "usercom": "User.com"}
HTTP_CONN_ID = "bench_http"
SQLITE_CONN_ID = "bench_wh"
PG_CONN_ID = "bench_pg"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_CONN_URI = "postgres://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "userattrs_bench"
RESULT_PREFIX = "BENCH-RESULT "
RATE_LIMIT = 50.0
MASS_CHUNK = 1000
FYNO_BATCH = 100
CONCURRENCY = 32
BASELINE_NAMES = {
    "naive": "naive `requests.post` loop",
    "httphook": "`HttpHook.run()` loop",
    "dlt": "dlt `@dlt.destination` sink",
}

log = logging.getLogger("benchmarks")


# -- sizes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs; ``--quick`` picks the small set."""

    name: str
    per_user: tuple[int, ...]
    dx_extra: tuple[int, ...]
    """Extra per-user sizes for DX at latency 0 only."""
    latencies: tuple[float, ...]
    baseline_sample: dict[float, int]
    """Users a sequential baseline sends at each latency; its users/s is applied to larger sizes."""
    mass: tuple[int, ...]
    mass_naive_sample: int
    stream_send: tuple[int, ...]
    stream_validate: tuple[int, ...]
    rate_users: int
    rate_vendors: tuple[str, ...]
    capacity_seconds: float


DEFAULT = Sizes(
    name="default",
    per_user=(1_000, 10_000),
    dx_extra=(100_000,),
    latencies=(0.0, 0.02),
    baseline_sample={0.0: 1_000, 0.02: 300},
    mass=(10_000, 100_000, 1_000_000),
    mass_naive_sample=2_000,
    stream_send=(10_000, 100_000),
    stream_validate=(10_000, 100_000, 1_000_000),
    rate_users=1_000,
    rate_vendors=("dx", "altatech"),
    capacity_seconds=8.0,
)
QUICK = Sizes(
    name="quick",
    per_user=(100, 500),
    dx_extra=(),
    latencies=(0.0, 0.02),
    baseline_sample={0.0: 300, 0.02: 60},
    mass=(10_000, 100_000),
    mass_naive_sample=300,
    stream_send=(2_000,),
    stream_validate=(2_000, 20_000),
    rate_users=250,
    rate_vendors=("dx",),
    capacity_seconds=2.0,
)


# -- environment -----------------------------------------------------------------------------------------


def configure_environment() -> None:
    """Airflow reads its configuration when imported: an isolated home, no examples, quiet logs."""
    home = os.environ.get("USERATTRS_BENCH_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="userattrs-bench-airflow-")
        os.environ["USERATTRS_BENCH_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    os.environ["DLT_DATA_DIR"] = os.path.join(home, "dlt")
    warnings.filterwarnings("ignore")
    quiet_logging()


def quiet_logging() -> None:
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("airflow", "airflow_provider_userattrs", "urllib3", "dlt", "sqlalchemy", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


def preload() -> None:
    """Import what every case uses, once, before the children are forked."""
    import requests  # noqa: F401
    import urllib3  # noqa: F401
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

    from airflow_provider_userattrs.hooks import get_hook  # noqa: F401
    from airflow_provider_userattrs.operators.sources import from_records, stream_sql  # noqa: F401
    from airflow_provider_userattrs.results import UserUpdate  # noqa: F401

    quiet_logging()


def progress(message: str) -> None:
    elapsed = time.perf_counter() - _STARTED
    print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


_STARTED = time.perf_counter()


# -- the sandbox process ---------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc; 0 where unavailable."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class Sandbox:
    """``python -m airflow_provider_userattrs.sandbox`` on a free port, in its own process."""

    def __init__(self, workdir: Path) -> None:
        from airflow_provider_userattrs.sandbox.client import SandboxClient

        port_file = workdir / "sandbox.port"
        self.log_path = workdir / "sandbox.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the process's lifetime
        command = [sys.executable, "-m", "airflow_provider_userattrs.sandbox", "--port", "0"]
        command += ["--port-file", str(port_file)]
        # User.com refuses attributes its app lacks: create the ones the scenarios send.
        command += [f"--usercom-attribute={name}" for name in (*bl.attributes(0), "churn_risk")]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox did not start within 60 s")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self.process.pid
        self.client = SandboxClient(self.url, timeout=120)
        self.client.wait_until_up()

    def prepare(self, **faults: Any) -> None:
        """Forget data, counters and faults, then set this case's faults."""
        self.client.reset()
        if faults:
            self.client.set_faults(**faults)

    def requests(self) -> dict[str, Any]:
        return dict(self.client.stats()["requests"])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class Context:
    """What a forked child needs to know about this run."""

    url: str = ""
    sandbox_pid: int | None = None


CTX = Context()


def set_connections(url: str, port: int) -> None:
    os.environ["AIRFLOW_CONN_BENCH_ALTATECH"] = json.dumps({"conn_type": "altatech", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_DX"] = json.dumps({"conn_type": "dx", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_USERCOM"] = json.dumps({"conn_type": "usercom", "host": url, "password": bl.TOKEN})
    os.environ["AIRFLOW_CONN_BENCH_FYNO"] = json.dumps(
        {"conn_type": "fyno", "host": url, "password": bl.TOKEN, "extra": {"workspace_id": bl.FYNO_WORKSPACE}}
    )
    os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )


# -- measuring -------------------------------------------------------------------------------------------


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB.

    Not ``ru_maxrss`` where ``/proc`` is there: Linux carries the parent's high-water mark into a child's
    ``ru_maxrss`` across fork + exec, so a fresh interpreter started from a 170 MB process reports at least
    170 MB whatever it does. ``VmHWM`` belongs to the process's own memory map (for a forked child it starts
    at the RSS it had at the fork).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot (``/proc/stat``); 0 where unavailable."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Span:
    """Wall time, client CPU, sandbox CPU and the rest of the machine's CPU over a ``with`` block.

    ``other_cpu`` is what the cores did besides the client and the sandbox (other processes, and kernel work
    not charged to either): the machine is shared, and a large figure says a row was measured under load.
    """

    def __init__(self, sandbox_pid: int | None = None) -> None:
        self.sandbox_pid = sandbox_pid if sandbox_pid is not None else CTX.sandbox_pid
        self.seconds = self.client_cpu = self.sandbox_cpu = self.other_cpu = 0.0

    def __enter__(self) -> Span:
        self._cpu = self_cpu_seconds()
        self._sandbox = proc_cpu_seconds(self.sandbox_pid)
        self._machine = machine_busy_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.client_cpu = self_cpu_seconds() - self._cpu
        self.sandbox_cpu = proc_cpu_seconds(self.sandbox_pid) - self._sandbox
        busy = machine_busy_seconds() - self._machine
        self.other_cpu = max(0.0, busy - self.client_cpu - self.sandbox_cpu) if busy else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "client_cpu": self.client_cpu,
            "sandbox_cpu": self.sandbox_cpu,
            "other_cpu": self.other_cpu,
        }


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
        try:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                process.kill()
                status, payload = "error", f"timed out after {timeout:.0f} s"
            else:
                status, payload = receiver.recv()
        except EOFError:
            status, payload = "error", "the child process died without an answer"
        finally:
            process.join(30)
            receiver.close()
        if status != "ok":
            progress(f"  ERROR in {fn.__name__}{args}: {payload}")
            results.append({"error": str(payload).strip().splitlines()[-1]})
        else:
            results.append(dict(payload))
    return results


# -- cases (each runs in a forked child) -------------------------------------------------------------------


def case_hook_updates(vendor: str, count: int, overrides: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.results import UserUpdate

    hook = get_hook(CONN_IDS[vendor], **overrides)
    hook.get_conn()
    ok = failed = 0
    with Span() as span:
        for result in hook.update_users(UserUpdate(uid, values) for uid, values in bl.users(vendor, count)):
            if result.ok:
                ok += 1
            else:
                failed += 1
    hook.close()
    return span.as_dict() | {
        "users": count,
        "ok": ok,
        "failed": failed,
        "requests_sent": hook.requests_sent,
        "throttled": hook.pacer.stats.throttled,
    }


def case_baseline(name: str, vendor: str, count: int) -> dict[str, Any]:
    if name == "dlt":
        import dlt  # noqa: F401 - imported before the clock starts, as in a warm worker

    with Span() as span:
        if name == "naive":
            result = bl.naive_loop(CTX.url, vendor, bl.users(vendor, count))
        elif name == "httphook":
            result = bl.http_hook_loop(HTTP_CONN_ID, vendor, bl.users(vendor, count))
        else:
            result = bl.dlt_sink(CTX.url, vendor, bl.users(vendor, count))
    out = span.as_dict() | result.as_dict()
    out["cpu_window"] = span.seconds  # CPU shares are over the whole span (dlt: pipeline set-up included)
    out["seconds"] = result.seconds  # the baseline's own clock (dlt: the pipeline run only)
    out["ok"] = result.accepted
    out["failed"] = result.users - result.accepted
    out["requests_sent"] = result.requests
    return out


def case_mass_update(count: int, freeze_gc: bool = False) -> dict[str, Any]:
    import gc

    from airflow_provider_userattrs.hooks import get_hook

    hook = get_hook(CONN_IDS["usercom"])
    hook.get_conn()
    if freeze_gc:
        # The objects alive now (Airflow, the provider) leave the collector's generations: what a full
        # collection still scans is the sync's own objects.
        gc.collect()
        gc.freeze()
    ok = failed = 0
    with Span() as span:
        for result in hook.mass_update("churn_risk", "high", range(1, count + 1)):
            if result.ok:
                ok += 1
            else:
                failed += 1
    hook.close()
    return span.as_dict() | {"users": count, "ok": ok, "failed": failed, "requests_sent": hook.requests_sent}


def case_mass_manual(count: int) -> dict[str, Any]:
    with Span() as span:
        result = bl.naive_mass_update_loop(CTX.url, "churn_risk", "high", range(1, count + 1), MASS_CHUNK)
    out = span.as_dict() | result.as_dict()
    out.update(ok=result.accepted, failed=result.users - result.accepted, requests_sent=result.requests)
    return out


def case_mass_naive(count: int) -> dict[str, Any]:
    work = ((index + 1, {"churn_risk": "high"}) for index in range(count))
    with Span() as span:
        result = bl.naive_loop(CTX.url, "usercom", work)
    out = span.as_dict() | result.as_dict()
    out.update(ok=result.accepted, failed=result.users - result.accepted, requests_sent=result.requests)
    return out


def case_capacity(threads: int, seconds: float) -> dict[str, Any]:
    with Span() as span:
        result = bl.lean_capacity(CTX.url, threads, seconds)
    return span.as_dict() | result


def case_build(target: str, users: int, schema: str) -> dict[str, Any]:
    from airflow_provider_userattrs.demo.warehouse import build_warehouse

    start = time.perf_counter()
    summary = build_warehouse(target, users=users, schema=schema)
    return {"seconds": time.perf_counter() - start, "orders": summary["orders"]}


# -- warehouse streaming (each size in a fresh interpreter) -----------------------------------------------


def worker_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Stream ``spec["sql"]`` through ``stream_sql`` + ``from_records`` and send it or only validate it."""
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook  # noqa: F401 - counted in the import RSS

    from airflow_provider_userattrs.hooks import get_hook
    from airflow_provider_userattrs.operators.sources import from_records, stream_sql

    if spec["db"] == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

    quiet_logging()
    hook = get_hook(CONN_IDS[spec["vendor"]])
    hook.get_conn()
    rss_ready = peak_rss_mb()
    rows = problems = ok = failed = 0

    def updates() -> Iterator[Any]:
        nonlocal rows, problems
        for item in from_records(stream_sql(spec["conn_id"], spec["sql"]), "email", None):
            rows += 1
            if item.update is None:
                problems += 1
                continue
            yield item.update

    with Span(spec.get("sandbox_pid")) as span:
        if spec["mode"] == "send":
            for result in hook.update_users(updates()):
                if result.ok:
                    ok += 1
                else:
                    failed += 1
        else:
            for update in updates():
                sendable, issues = hook.validate(update)
                if sendable is None or any(issue.outcome.is_failure for issue in issues):
                    failed += 1
                else:
                    ok += 1
    hook.close()
    return span.as_dict() | {
        "rows": rows,
        "problems": problems,
        "ok": ok,
        "failed": failed,
        "requests_sent": hook.requests_sent,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_worker(spec: dict[str, Any], env: dict[str, str], timeout: float = 1800.0) -> dict[str, Any]:
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


# -- formatting --------------------------------------------------------------------------------------------


def f_int(value: float) -> str:
    return f"{value:,.0f}"


def f_rate(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def f_sec(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def f_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x"


def f_pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole > 0 else "—"


def f_mb(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = [str(cell) for cell in row] + [""] * (len(headers) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def users_per_second(result: dict[str, Any]) -> float:
    seconds = result.get("seconds") or 0.0
    return (result.get("users") or 0) / seconds if seconds > 0 else 0.0


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: str = ""

    def render(self) -> str:
        parts = [f"## {self.title}", ""]
        if self.intro:
            parts += [self.intro, ""]
        for caption, text in self.tables:
            if caption:
                parts += [caption, ""]
            parts += [text, ""]
        if self.notes:
            parts += [f"- {note}" for note in self.notes] + [""]
        if self.bounds:
            parts += [f"**What bounds it.** {self.bounds}", ""]
        return "\n".join(parts)


@dataclass
class Target:
    name: str
    measured: str
    met: bool | None


@dataclass
class Report:
    sizes: Sizes
    sections: list[Section] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    chart: str | None = None
    chart_note: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


# -- scenario 1: per-user updates ----------------------------------------------------------------------------


def api_minimum(vendor: str, users: int) -> int:
    return math.ceil(users / FYNO_BATCH) if vendor == "fyno" else users


def scenario_per_user(sandbox: Sandbox, sizes: Sizes, report: Report, dlt_problem: str | None) -> Section:
    section = Section(
        "1. Per-user updates (3 attributes per user)",
        "Each user gets `lifetime_value` (different for every user), `vip_level` and `order_count`. The hook runs "
        f"with its defaults (`concurrency` {CONCURRENCY}, no rate limit); the baselines send one call per user, "
        "in sequence, to the same sandbox in the same run. `requests` is what the sandbox counted, beside the "
        "API minimum (one call per user; Fyno: one batch call per "
        f"{FYNO_BATCH} users, the hook's `batch_size`). CPU is the share of one core used over the wall time, "
        "by the client process (all threads), by the sandbox process and by everything else on the machine "
        "(`other`: kernel work charged to neither, and other people's processes: the machine is shared, so a "
        "large `other` marks a row measured under load).",
    )
    rates: dict[tuple[float, str, str], float] = {}
    chart_data: dict[float, dict[str, dict[str, float]]] = {}
    all_results: dict[tuple[float, str], dict[str, Any]] = {}
    every_run: list[tuple[float, str, dict[str, Any]]] = []
    extrapolated = False
    for latency in sizes.latencies:
        rows: list[list[str]] = []
        chart_data[latency] = {}
        for vendor in bl.VENDORS:
            vendor_sizes = list(sizes.per_user)
            if vendor == "dx" and latency == 0:
                vendor_sizes += list(sizes.dx_extra)
            hook_runs: list[dict[str, Any]] = []
            for count in vendor_sizes:
                progress(f"1. {vendor} hook, {count:,} users, latency {latency * 1000:.0f} ms")
                sandbox.prepare(latency=latency)
                result = run_child(case_hook_updates, vendor, count, {})
                result["sandbox"] = sandbox.requests()
                hook_runs.append(result)
            sample = min(sizes.baseline_sample[latency], max(sizes.per_user))
            base: dict[str, dict[str, Any] | None] = {}
            for name in ("naive", "httphook", "dlt"):
                if name == "dlt" and dlt_problem:
                    base[name] = None
                    continue
                progress(f"1. {vendor} {name}, {sample:,} users, latency {latency * 1000:.0f} ms")
                sandbox.prepare(latency=latency)
                result = run_child(case_baseline, name, vendor, sample)
                result["sandbox"] = sandbox.requests()
                base[name] = result
            for result in hook_runs:
                count = result.get("users", 0)
                rate = users_per_second(result)
                ratios = []
                for name in ("naive", "httphook", "dlt"):
                    other = base.get(name)
                    other_rate = users_per_second(other) if other and "error" not in other else 0.0
                    ratio = rate / other_rate if other_rate and rate else None
                    mark = "†" if ratio is not None and other and other.get("users", 0) < count else ""
                    extrapolated = extrapolated or bool(mark)
                    ratios.append(f_ratio(ratio) + mark)
                    if ratio is not None:
                        rates[(latency, vendor, name)] = ratio
                rows.append(hook_row(vendor, "provider hook", count, result, api_minimum(vendor, count), ratios))
                every_run.append((latency, vendor, result))
                if count == max(sizes.per_user):
                    all_results[(latency, vendor)] = result
                    chart_data[latency].setdefault(vendor, {})["hook"] = rate
            for name in ("naive", "httphook", "dlt"):
                other = base[name]
                if other is None:
                    rows.append([LABELS[vendor], BASELINE_NAMES[name], "—", "—", "not run"])
                    continue
                rows.append(
                    hook_row(vendor, BASELINE_NAMES[name], other.get("users", 0), other, other.get("users", 0), [])
                )
                chart_data[latency].setdefault(vendor, {})[name] = users_per_second(other)
        headers = ["vendor", "client", "users", "wall s", "users/s", "requests / API min", "client CPU"]
        headers += ["sandbox CPU", "other CPU", "peak RSS MB", "x naive", "x HttpHook", "x dlt"]
        rows = [row + [""] * (len(headers) - len(row)) for row in rows]
        section.tables.append((f"**Sandbox latency {latency * 1000:.0f} ms**", table(headers, rows)))
    if extrapolated:
        section.notes.append(
            "† the baseline ran on fewer users than this row (the `users` of its own row) and its users/s is applied "
            "to this size: a sequential loop runs at a steady rate, so its users/s does not depend on the size "
            f"(samples: {', '.join(f'{v:,} users at {k * 1000:.0f} ms' for k, v in sizes.baseline_sample.items())})."
        )
    if dlt_problem:
        section.notes.append(f"dlt could not be imported ({dlt_problem}): its column is empty.")
    section.notes.append(
        "The Fyno baselines call the per-user `…/profiles/properties/set` endpoint (one call per user), as a "
        "hand-written loop does; the hook uses the batch endpoint, so its ratio mostly measures batching."
    )
    section.notes.append(
        "Peak RSS is the child process's high-water mark (`VmHWM`), Airflow and the provider already imported: "
        f"a child starts at the parent's RSS at fork time ({report.extras.get('parent_rss_mb', 0):,.0f} MB)."
    )
    failures = [
        f"{LABELS[v]}, {f_int(r.get('users', 0))} users at {lat * 1000:.0f} ms: {r.get('failed')} failed"
        for lat, v, r in every_run
        if r.get("failed") or "error" in r
    ]
    if failures:
        section.notes.append("Users not delivered: " + "; ".join(failures) + ".")
    report.extras["s1_chart"] = chart_data
    report.extras["s1_ratios"] = rates
    report.extras["s1_results"] = all_results
    report.extras["s1_every_run"] = every_run
    section.bounds = bounds_per_user(sizes, report)
    slow = sizes.latencies[-1]
    measured = [(v, rates.get((slow, v, "naive"))) for v in bl.VENDORS]
    known = [(v, r) for v, r in measured if r is not None]
    if known:
        report.targets.append(
            Target(
                f"Per-user updates at {slow * 1000:.0f} ms latency: hook ≥ 20x the naive loop's users/s "
                f"({max(sizes.per_user):,} users)",
                ", ".join(f"{LABELS[v]} {f_ratio(r)}" for v, r in known),
                all(r >= 20 for _, r in known),
            )
        )
    return section


def hook_row(
    vendor: str, client: str, users: int, result: dict[str, Any], minimum: int, ratios: list[str]
) -> list[str]:
    if "error" in result:
        return [LABELS[vendor], client, f_int(users), "error", result["error"][:80]]
    sandbox = result.get("sandbox", {})
    sent = sandbox.get("total", result.get("requests_sent", 0))
    seconds = result["seconds"]
    requests = f"{f_int(sent)} / {f_int(minimum)}"
    if result.get("requests_sent") not in (None, sent):
        requests += f" (client counted {f_int(result['requests_sent'])})"
    return [
        LABELS[vendor],
        client,
        f_int(users),
        f_sec(seconds),
        f_rate(users_per_second(result)),
        requests,
        f_pct(result.get("client_cpu", 0), result.get("cpu_window", seconds)),
        f_pct(result.get("sandbox_cpu", 0), result.get("cpu_window", seconds)),
        f_pct(result.get("other_cpu", 0), result.get("cpu_window", seconds)),
        f_mb(result.get("peak_rss_mb")),
        *ratios,
    ]


def bounds_per_user(sizes: Sizes, report: Report) -> str:
    results: dict[tuple[float, str], dict[str, Any]] = report.extras["s1_results"]
    chart: dict[float, dict[str, dict[str, float]]] = report.extras["s1_chart"]
    parts: list[str] = []
    slow = max(sizes.latencies)
    if slow > 0:
        ceiling = 1 / slow
        naive = chart.get(slow, {}).get("dx", {}).get("naive")
        if naive:
            parts.append(
                f"At {slow * 1000:.0f} ms a sequential client cannot pass 1 / {slow:.3f} s = {ceiling:.0f} users/s; "
                f"the naive loop reached {f_rate(naive)} users/s on DX, the rest of each call being a new TCP "
                "connection and requests' own work (HttpHook adds a new `Session` and a connection lookup per call, "
                "dlt its extract/normalize/load steps)."
            )
        hook_ceiling = CONCURRENCY / slow
        dx = results.get((slow, "dx"))
        alta = results.get((slow, "altatech"))
        if dx and "error" not in dx:
            text = (
                f"The hook keeps {CONCURRENCY} requests in flight, a ceiling of {CONCURRENCY} / {slow:.3f} s = "
                f"{hook_ceiling:,.0f} requests/s: DX reached {f_rate(users_per_second(dx))} users/s "
                f"({f_pct(users_per_second(dx), hook_ceiling)} of it)"
            )
            if alta and "error" not in alta:
                text += f" and AltaTech {f_rate(users_per_second(alta))}"
            text += (
                f", with the client process at {f_pct(dx['client_cpu'], dx['seconds'])} of a core: the gap to the "
                "ceiling is the client's own per-request work (validation, JSON, urllib3) under the GIL."
            )
            parts.append(text)
        usercom = results.get((slow, "usercom"))
        if usercom and dx and "error" not in usercom and "error" not in dx:
            uc_rate, dx_rate = users_per_second(usercom), users_per_second(dx)
            if uc_rate < 0.5 * dx_rate:
                parts.append(
                    f"User.com reached only {f_rate(uc_rate)} users/s against DX's {f_rate(dx_rate)}: fewer requests "
                    f"were in flight than `concurrency` allows (client CPU "
                    f"{f_pct(usercom['client_cpu'], usercom['seconds'])}), which points at how its calls are "
                    "scheduled, not at CPU."
                )
            sent = usercom.get("sandbox", {}).get("total", 0)
            if sent > usercom["users"]:
                parts.append(
                    f"User.com sent {f_pct(sent - usercom['users'], usercom['users'])} more requests than the minimum: "
                    f"in each window of {MASS_CHUNK:,} users the hook sends one mass update per (attribute, value) "
                    "shared by at least 2 users (`vip_level`, `order_count`), on top of the per-user call that each "
                    "user's unique `lifetime_value` needs anyway."
                )
        fyno = results.get((slow, "fyno"))
        if fyno and "error" not in fyno:
            parts.append(
                f"Fyno sends {FYNO_BATCH} users per request, so latency hardly matters: "
                f"{f_rate(users_per_second(fyno))} users/s, client CPU {f_pct(fyno['client_cpu'], fyno['seconds'])}."
            )
    if 0.0 in sizes.latencies:
        every: list[tuple[float, str, dict[str, Any]]] = report.extras["s1_every_run"]
        dx0 = [r for lat, v, r in every if lat == 0 and v == "dx" and "error" not in r]
        if dx0:
            dx = max(dx0, key=lambda r: r["users"])
            capacity = report.extras.get("capacity_rps")
            text = (
                f"Without latency the hook is bound by CPU: on DX ({f_int(dx['users'])} users, "
                f"{f_rate(users_per_second(dx))} users/s) the client process used "
                f"{f_pct(dx['client_cpu'], dx['seconds'])} of a core (a Python process gets about one core for "
                f"this work under the GIL) and the sandbox {f_pct(dx['sandbox_cpu'], dx['seconds'])}, on "
                f"{os.cpu_count()} cores shared by both."
            )
            if capacity:
                text += f" The sandbox alone serves {f_int(capacity)} requests/s (scenario 5)."
            parts.append(text)
    return " ".join(parts)


# -- scenario 2: mass update ------------------------------------------------------------------------------


def scenario_mass_update(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    section = Section(
        "2. Mass update of one attribute on User.com (`hook.mass_update`)",
        f'`churn_risk = "high"` for n ids through `mass_update_custom_attributes/` ({MASS_CHUNK:,} ids a call), '
        "latency 0. Beside it: the same chunked calls written by hand (`requests.post` per chunk, no validation, "
        "no per-user results) and the naive per-user loop (`set_multiple_attributes/` per id) on a sample, "
        "extrapolated.",
    )
    progress(f"2. naive per-user sample, {sizes.mass_naive_sample:,} users")
    sandbox.prepare()
    naive = run_child(case_mass_naive, sizes.mass_naive_sample)
    naive["sandbox"] = sandbox.requests()
    naive_rate = users_per_second(naive) if "error" not in naive else 0.0
    rows: list[list[str]] = []
    all_exact = True
    results = []
    for count in sizes.mass:
        progress(f"2. mass update, {count:,} ids")
        sandbox.prepare()
        hook = run_child(case_mass_update, count)
        hook["sandbox"] = sandbox.requests()
        progress(f"2. hand-written chunk loop, {count:,} ids")
        sandbox.prepare()
        manual = run_child(case_mass_manual, count)
        manual["sandbox"] = sandbox.requests()
        minimum = math.ceil(count / MASS_CHUNK)
        if "error" in hook or hook["sandbox"].get("total") != minimum or hook.get("ok") != count:
            all_exact = False
        rate = users_per_second(hook)
        manual_rate = users_per_second(manual)
        vs_manual = f_ratio(rate / manual_rate if manual_rate and rate else None)
        vs_naive = f_ratio(rate / naive_rate if naive_rate and rate else None) + "†"
        rows.append([*hook_row("usercom", "provider hook", count, hook, minimum, [])[:10], vs_manual, vs_naive])
        rows.append(hook_row("usercom", "hand-written chunk loop", count, manual, minimum, [])[:10])
        results.append((count, hook, manual))
    frozen: dict[str, Any] = {}
    if sizes.mass:
        count = max(sizes.mass)
        progress(f"2. mass update, {count:,} ids, gc.freeze() after imports")
        sandbox.prepare()
        frozen = run_child(case_mass_update, count, True)
        frozen["sandbox"] = sandbox.requests()
        rate = users_per_second(frozen)
        minimum = math.ceil(count / MASS_CHUNK)
        row = hook_row("usercom", "provider hook, `gc.freeze()` after imports", count, frozen, minimum, [])
        rows.append(row[:10])
    sample = naive.get("users", 0)
    rows.append(hook_row("usercom", "naive per-user loop", sample, naive, sample, [])[:10])
    headers = ["vendor", "client", "users", "wall s", "users/s", "requests / API min", "client CPU", "sandbox CPU"]
    headers += ["other CPU", "peak RSS MB", "x hand-written", "x naive per-user"]
    section.tables.append(("", table(headers, rows)))
    section.notes.append(
        f"† the naive per-user loop ran on {sizes.mass_naive_sample:,} ids; its users/s is applied to every size "
        f"(at {f_rate(naive_rate)} users/s, 1,000,000 ids would take {1_000_000 / naive_rate / 60:,.0f} min)."
        if naive_rate
        else "The naive per-user sample failed."
    )
    section.notes.append(
        "`other CPU`: the machine's CPU spent outside the client and the sandbox (as in scenario 1). "
        "API minimum: ceil(n / 1,000) calls. "
        + (
            "Every size sent exactly that many."
            if all_exact
            else "NOT every size sent exactly that many: see the table."
        )
    )
    report.targets.append(
        Target(
            "Mass update: requests sent = ceil(n / 1,000), every id delivered",
            ", ".join(f"{f_int(c)} ids: {h.get('sandbox', {}).get('total', '?')} requests" for c, h, _ in results),
            all_exact,
        )
    )
    biggest = results[-1] if results else None
    if biggest and "error" not in biggest[1] and frozen and "error" not in frozen:
        gc_share = 1 - frozen["client_cpu"] / biggest[1]["client_cpu"] if biggest[1]["client_cpu"] else 0.0
        section.notes.append(
            f"The `gc.freeze()` row is the same {f_int(biggest[0])}-id run with the objects alive after the imports "
            "(Airflow, the provider) moved out of the cyclic collector's reach first: the CPU it saves "
            f"({gc_share * 100:.0f} % here) is what the collector spent re-scanning them while the sync allocated."
        )
    if biggest and "error" not in biggest[1]:
        count, hook, manual = biggest
        micro = hook["seconds"] / count * 1e6
        manual_micro = manual["seconds"] / count * 1e6 if "error" not in manual else 0.0
        gc_text = ""
        if frozen and "error" not in frozen and hook["client_cpu"]:
            gc_text = (
                f" About {(1 - frozen['client_cpu'] / hook['client_cpu']) * 100:.0f} % of that CPU is the cyclic "
                "garbage collector: every id allocates a few container objects, so full collections keep coming, "
                "and each re-scans every object Airflow's imports left alive; with those frozen first "
                f"(`gc.freeze()` row) the same run takes {f_sec(frozen['seconds'])} s instead of "
                f"{f_sec(hook['seconds'])} s."
            )
        section.bounds = (
            f"Requests are few ({f_int(math.ceil(count / MASS_CHUNK))} for {f_int(count)} ids), so the time goes to "
            f"per-id work in the client: {micro:.1f} µs per id for the hook (client CPU "
            f"{f_pct(hook['client_cpu'], hook['seconds'])} of a core: validating each id, planning the window and "
            f"building one `UserResult` per id) against {manual_micro:.1f} µs for the hand-written loop, which "
            "only builds and posts the JSON and checks nothing. The sandbox used "
            f"{f_pct(hook['sandbox_cpu'], hook['seconds'])} of a core." + gc_text
        )
    return section


# -- scenario 3: warehouse streaming ------------------------------------------------------------------------


def postgres_problem() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3).close()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def drop_bench_schema() -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.commit()
    finally:
        conn.close()


def scenario_streaming(sandbox: Sandbox, sizes: Sizes, report: Report, workdir: Path) -> Section:
    section = Section(
        "3. Warehouse-sourced streaming (`stream_sql` + `from_records` → DX hook)",
        "`SELECT email, lifetime_value, vip_level FROM user_attributes ORDER BY user_id` on the demo warehouse "
        "(2 % dirty rows: NULL emails are counted as problems, `.invalid` emails are refused by DX), read with "
        "`stream_sql` (10,000 rows a fetch; a server-side cursor on PostgreSQL) and turned into `UserUpdate`s by "
        "`from_records`. `send`: through `DXHook.update_users` to the sandbox at latency 0; `validate`: "
        "`hook.validate` only, no HTTP. Every case runs in a fresh interpreter: `RSS after imports` is its "
        "high-water mark (`VmHWM`) once Airflow, the provider and the SQL hooks are imported, `peak RSS` the same "
        "at the end (`ru_maxrss` would report the benchmark parent's peak instead: Linux carries it across "
        "fork + exec).",
    )
    pg_problem = postgres_problem()
    databases = [("sqlite", "SQLite")] + ([("postgres", "PostgreSQL")] if not pg_problem else [])
    if pg_problem:
        section.notes.append(f"PostgreSQL rows skipped: the server at 127.0.0.1:5432 is unreachable ({pg_problem}).")
    counts = sorted(set(sizes.stream_send) | set(sizes.stream_validate))
    rows: list[list[str]] = []
    peaks: dict[tuple[str, str, int], float] = {}
    try:
        for db, label in databases:
            for count in counts:
                if db == "sqlite":
                    target = str(workdir / f"warehouse-{count}.db")
                    sql = "SELECT email, lifetime_value, vip_level FROM user_attributes ORDER BY user_id"
                    env = dict(os.environ, AIRFLOW_CONN_BENCH_WH=json.dumps({"conn_type": "sqlite", "host": target}))
                    conn_id = SQLITE_CONN_ID
                else:
                    target = PG_URL
                    sql = f"SELECT email, lifetime_value, vip_level FROM {PG_SCHEMA}.user_attributes ORDER BY user_id"
                    env = dict(os.environ, AIRFLOW_CONN_BENCH_PG=PG_CONN_URI)
                    conn_id = PG_CONN_ID
                progress(f"3. build {label} warehouse, {count:,} users")
                build = run_child(case_build, target, count, PG_SCHEMA)
                if "error" in build:
                    rows.append([label, f_int(count), "build", "error", build["error"][:80]])
                    continue
                modes = [m for m, s in (("send", sizes.stream_send), ("validate", sizes.stream_validate)) if count in s]
                for mode in modes:
                    progress(f"3. {label} {mode}, {count:,} rows")
                    sandbox.prepare()
                    spec = {
                        "db": db,
                        "mode": mode,
                        "vendor": "dx",
                        "conn_id": conn_id,
                        "sql": sql,
                        "sandbox_pid": sandbox.pid,
                    }
                    result = run_worker(spec, env)
                    if "error" in result:
                        rows.append([label, f_int(count), mode, "error", result["error"][:80]])
                        continue
                    sent = sandbox.requests().get("total", 0) if mode == "send" else 0
                    peaks[(db, mode, count)] = result["peak_rss_mb"]
                    rate = result["rows"] / result["seconds"] if result["seconds"] else 0.0
                    rows.append(
                        [
                            label,
                            f_int(count),
                            mode,
                            f_sec(result["seconds"]),
                            f_rate(rate),
                            f"{f_int(result['ok'])} / {f_int(result['failed'])} / {f_int(result['problems'])}",
                            f"{f_int(sent)} / {f_int(result['ok'] + result['failed'])}"
                            if mode == "send"
                            else "no HTTP",
                            f_pct(result["client_cpu"], result["seconds"]),
                            f_pct(result["sandbox_cpu"], result["seconds"]) if mode == "send" else "—",
                            f_mb(result["rss_ready_mb"]),
                            f_mb(result["peak_rss_mb"]),
                            f"{result['peak_rss_mb'] - result['rss_ready_mb']:,.0f}",
                            f"{f_sec(build['seconds'])}",
                        ]
                    )
    finally:
        if not pg_problem:
            try:
                drop_bench_schema()
            except Exception as exc:  # the report matters more than the clean-up
                section.notes.append(f"Dropping schema {PG_SCHEMA} failed: {type(exc).__name__}: {exc}")
    headers = ["database", "rows", "mode", "wall s", "rows/s", "users ok / failed / problems", "requests / API min"]
    headers += ["client CPU", "sandbox CPU", "RSS after imports MB", "peak RSS MB", "Δ MB", "build s"]
    section.tables.append(("", table(headers, rows)))
    largest_send = max(sizes.stream_send)
    if max(sizes.stream_validate) > largest_send:
        section.notes.append(
            f"Sizes above {f_int(largest_send)} rows are measured in `validate` mode only: sending 1,000,000 users to "
            "DX one request each at the rate of scenario 1 would take about 8 minutes per database, beyond this "
            "run's time budget. The `validate` path reads, converts and validates every row exactly as `send` "
            "does before the HTTP layer."
        )
    section.notes.append(
        "`failed`: in `send`, the users DX refuses (emails at `.invalid`, 1 in 300 rows), which `validate` alone "
        "cannot know; `problems`: rows with a NULL email, which never become updates. `requests / API min`: "
        "requests the sandbox counted / updates that reached the hook (one call each is the minimum)."
    )
    targets_text = []
    met = True
    small, large = min(sizes.stream_validate), max(sizes.stream_validate)
    for db, label in databases:
        low, high = peaks.get((db, "validate", small)), peaks.get((db, "validate", large))
        if low is not None and high is not None:
            delta = high - low
            targets_text.append(f"{label} validate {f_int(small)}→{f_int(large)}: {delta:+.0f} MB")
            met = met and delta <= 50
        send_sizes = sorted(sizes.stream_send)
        if len(send_sizes) > 1:
            low, high = peaks.get((db, "send", send_sizes[0])), peaks.get((db, "send", send_sizes[-1]))
            if low is not None and high is not None:
                targets_text.append(
                    f"{label} send {f_int(send_sizes[0])}→{f_int(send_sizes[-1])}: {high - low:+.0f} MB"
                )
                met = met and high - low <= 50
    report.targets.append(
        Target(
            f"Streaming: peak RSS grows ≤ 50 MB from {f_int(small)} to {f_int(large)} rows",
            "; ".join(targets_text) or "not measured",
            met if targets_text else None,
        )
    )
    report.extras["s3_peaks"] = peaks
    section.bounds = (
        "Memory stays flat because nothing holds the rows: `stream_sql` fetches 10,000 at a time (a named, "
        "server-side cursor on PostgreSQL; SQLite's cursor steps through the query), `from_records` is a generator, "
        f"and the hook keeps at most 2 x concurrency ({2 * CONCURRENCY}) calls in flight. Time: `validate` is "
        "the reading and per-row CPU work (the DX email check runs for each id, since every email differs), on "
        "one core; `send` adds one HTTP call per user and runs at scenario 1's latency-0 rate."
    )
    return section


# -- scenario 4: rate-limited vendor ------------------------------------------------------------------------


def scenario_rate_limit(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    count = sizes.rate_users
    ideal = (count - RATE_LIMIT) / RATE_LIMIT
    section = Section(
        f"4. Rate-limited vendor (sandbox `rate_limit` = {RATE_LIMIT:.0f} requests/s)",
        f"{f_int(count)} users, one request each, latency 0; beyond {RATE_LIMIT:.0f} requests/s the sandbox answers "
        "429 with `Retry-After` (whole seconds; AltaTech answers also carry `X-RateLimit-*`). The hook runs with "
        "its defaults (no `requests_per_second` configured: it has to find the pace from the 429s). The sandbox's "
        f"bucket starts full ({RATE_LIMIT:.0f} requests), so a perfect client needs ({f_int(count)} - "
        f"{RATE_LIMIT:.0f}) / {RATE_LIMIT:.0f} = {ideal:.1f} s.",
    )
    rows: list[list[str]] = []
    utilizations: list[tuple[str, float, int]] = []
    runs: list[tuple[str, dict[str, Any]]] = []
    for vendor in sizes.rate_vendors:
        progress(f"4. {vendor} hook under {RATE_LIMIT:.0f} requests/s, {count:,} users")
        sandbox.prepare(rate_limit=RATE_LIMIT)
        result = run_child(case_hook_updates, vendor, count, {})
        result["sandbox"] = sandbox.requests()
        runs.append((vendor, result))
        rows.append(rate_row(vendor, "provider hook", result, count))
        if "error" not in result:
            accepted = result["ok"]
            sustained = (accepted - RATE_LIMIT) / result["seconds"] / RATE_LIMIT
            utilizations.append((vendor, accepted / result["seconds"] / RATE_LIMIT, sustained, count - accepted))
    progress(f"4. naive loop ignoring 429, {count:,} users")
    sandbox.prepare(rate_limit=RATE_LIMIT)
    naive = run_child(case_baseline, "naive", "dx", count)
    naive["sandbox"] = sandbox.requests()
    rows.append(rate_row("dx", "naive loop, 429 ignored", naive, count))
    headers = ["vendor", "client", "users", "wall s", "accepted requests/s", "of the limit", "sustained"]
    headers += ["429s received"]
    headers += ["requests sent / API min", "users lost", "client CPU"]
    section.tables.append(("", table(headers, rows)))
    section.notes.append(
        "`accepted requests/s` is 2xx answers over the wall time, the bucket's first 50 included (a client that "
        "uses them can show a little over 100 %); `sustained` leaves those 50 out: (accepted - 50) / wall, i.e. "
        "the perfect client's time over the measured one. The naive loop's figures are over its short run and "
        "are mostly those 50, its other requests being lost."
    )
    if utilizations:
        report.targets.append(
            Target(
                f"Rate limit {RATE_LIMIT:.0f}/s: hook achieves ≥ 90 % of it (judged on the sustained rate, the "
                f"bucket's first {RATE_LIMIT:.0f} left out), 0 users lost",
                ", ".join(
                    f"{LABELS[v]} {u * 100:.1f} % ({s * 100:.1f} % sustained), {lost} lost"
                    for v, u, s, lost in utilizations
                ),
                all(s >= 0.9 and lost == 0 for _, _, s, lost in utilizations),
            )
        )
    dx = dict(runs).get("dx")
    if dx and "error" not in dx:
        throttled = dx["sandbox"].get("by_status", {}).get("429", 0)
        section.bounds = (
            f"The limit itself: {RATE_LIMIT:.0f} requests/s, whatever the client. What the hook loses against it comes "
            f"from its pacing (`hooks/policy.py`, `Throttle`): each 429 ({f_int(throttled)} on DX here) pauses every "
            "thread for the `Retry-After` the sandbox rounds up to a whole second, and sets the pace to 95 % of what "
            "the vendor accepted in the last second (its limit, measured), which then grows back by about one "
            "request/s each second; with no client-side `requests_per_second` it probes above the limit now and then. "
            f"DX wall {f_sec(dx['seconds'])} s against {ideal:.1f} s for a perfect client. The naive loop finishes "
            "first because it gives up on every user the vendor throttles."
        )
        alta = dict(runs).get("altatech")
        if alta and "error" not in alta:
            section.bounds += (
                f" AltaTech took {f_sec(alta['seconds'])} s: its answers also carry `X-RateLimit-Remaining` and "
                "`X-RateLimit-Reset`; the hook holds every thread until the reset only when it is more than a second "
                "away (an hourly quota), since a nearer reset is within the header's one-second resolution."
            )
    return section


def rate_row(vendor: str, client: str, result: dict[str, Any], count: int) -> list[str]:
    if "error" in result:
        return [LABELS[vendor], client, f_int(count), "error", result["error"][:80]]
    statuses = result["sandbox"].get("by_status", {})
    accepted = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    rate = accepted / result["seconds"]
    return [
        LABELS[vendor],
        client,
        f_int(count),
        f_sec(result["seconds"]),
        f_rate(rate),
        f"{100 * rate / RATE_LIMIT:.1f} %",
        f"{100 * (accepted - RATE_LIMIT) / result['seconds'] / RATE_LIMIT:.1f} %" if accepted > RATE_LIMIT else "—",
        f_int(statuses.get("429", 0)),
        f"{f_int(result['sandbox'].get('total', 0))} / {f_int(count)}",
        f_int(count - result["ok"]),
        f_pct(result["client_cpu"], result["seconds"]),
    ]


# -- scenario 5: sandbox capacity ----------------------------------------------------------------------------


def scenario_capacity(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    section = Section(
        "5. Sandbox capacity",
        "A lean client: 8 threads, one keep-alive urllib3 connection each, pre-encoded DX bodies, nothing else; "
        f"latency 0, {sizes.capacity_seconds:.0f} s. A Python client saturates its own core first, so the same 8 "
        "connections are also spread over 2 client processes: the higher rate is the most the sandbox served on "
        "this machine with its clients beside it.",
    )
    rows: list[list[str]] = []
    best = 0.0
    best_row: dict[str, Any] = {}
    for processes in (1, 2):
        threads = 8 // processes
        progress(f"5. sandbox capacity, {processes} process(es) x {threads} threads, {sizes.capacity_seconds:.0f} s")
        sandbox.prepare()
        sandbox_cpu = proc_cpu_seconds(sandbox.pid)
        start = time.perf_counter()
        results = run_children(case_capacity, [(threads, sizes.capacity_seconds)] * processes)
        elapsed = time.perf_counter() - start
        sandbox_cpu = proc_cpu_seconds(sandbox.pid) - sandbox_cpu
        counted = sandbox.requests().get("total", 0)
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            rows.append([f"{processes} x {threads} threads", "error", errors[0][:80]])
            continue
        seconds = max(r["seconds"] for r in results)
        answered = sum(r["requests"] for r in results)
        rps = answered / seconds
        client_cpu = sum(r["client_cpu"] for r in results)
        rows.append(
            [
                f"lean urllib3, {processes} process{'es' if processes > 1 else ''} x {threads} threads",
                f_sec(seconds),
                f_int(answered),
                f_int(rps),
                f_int(sum(r["errors"] for r in results)),
                f"{100 * client_cpu / seconds:.0f} % ({processes} process{'es' if processes > 1 else ''})",
                f_pct(sandbox_cpu, elapsed),
                f_int(counted),
            ]
        )
        if rps > best:
            best, best_row = rps, {"client": client_cpu / seconds, "sandbox": sandbox_cpu / elapsed, "p": processes}
    headers = ["client", "wall s", "requests answered", "requests/s", "errors", "client CPU", "sandbox CPU"]
    headers += ["sandbox counted"]
    section.tables.append(("", table(headers, rows)))
    if best:
        report.extras["capacity_rps"] = best
        section.bounds = (
            f"Up to {f_int(best)} requests/s. The sandbox is a threaded Python server (one interpreter: one core at "
            f"most) and used {best_row['sandbox'] * 100:.0f} % of a core at that rate, while the client processes "
            f"took {best_row['client'] * 100:.0f} %; the {os.cpu_count()} cores are shared by both, so "
            + (
                "the sandbox's own core is the limit."
                if best_row["sandbox"] >= 0.9
                else "the machine, not the sandbox alone, sets this ceiling: a client that does any work per request "
                "leaves the sandbox even more room."
            )
        )
    return section


# -- chart, machine, report ----------------------------------------------------------------------------------


def make_chart(report: Report, path: Path) -> str | None:
    """A bar chart of users/s per vendor (hook and baselines), log scale; None when matplotlib is missing."""
    data: dict[float, dict[str, dict[str, float]]] = report.extras.get("s1_chart", {})
    if not data:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        report.chart_note = f"No chart: matplotlib is not installed ({type(exc).__name__})."
        return None
    series = [("hook", "provider hook"), ("naive", "naive requests.post"), ("httphook", "HttpHook"), ("dlt", "dlt")]
    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4.2), squeeze=False)
    for axis, (latency, vendors) in zip(axes[0], sorted(data.items()), strict=False):
        names = [v for v in bl.VENDORS if v in vendors]
        width = 0.8 / len(series)
        for i, (key, label) in enumerate(series):
            values = [vendors[v].get(key, 0.0) for v in names]
            positions = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
            axis.bar(positions, values, width, label=label)
        axis.set_xticks(range(len(names)), [LABELS[v] for v in names])
        axis.set_yscale("log")
        axis.set_ylabel("users/s (log)")
        axis.set_title(f"sandbox latency {latency * 1000:.0f} ms, {max(report.sizes.per_user):,} users (hook)")
        axis.grid(axis="y", which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(series), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> list[str]:
    cpu = ""
    memory = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
        with open("/proc/meminfo") as handle:
            kb = int(next(line.split()[1] for line in handle if line.startswith("MemTotal")))
            memory = f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(
        f"{name} {package_version(name)}"
        for name in ("apache-airflow", "apache-airflow-providers-http", "requests", "urllib3", "dlt")
    )
    return [
        f"Cores: {os.cpu_count()} ({usable} usable by this process){f', {cpu}' if cpu else ''}"
        + (f", {memory}" if memory else ""),
        f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"Packages: {versions}",
    ]


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def render(report: Report, out: Path, started: datetime, seconds: float, pg_version: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m benchmarks.run{' --quick' if report.sizes.name == 'quick' else ''}` "
        "(`bash scripts/benchmarks.sh` installs what it needs and runs it). Every number below comes from that one "
        "run against the vendor sandbox (`python -m airflow_provider_userattrs.sandbox`, in its own process); "
        "run it again to check them on your machine.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; commit {git_commit()}; sizes: {report.sizes.name}; "
        f"whole run {seconds / 60:.1f} min",
        *[f"- {line}" for line in machine_info()],
        f"- PostgreSQL: {pg_version}",
        f"- Load average (1 min) at the start and the end of the run: {report.extras.get('load_start', '?')} / "
        f"{report.extras.get('load_end', '?')}",
        "- Client and sandbox share the machine: every figure is for both on these cores.",
        "",
        "## Targets",
        "",
        table(
            ["target", "measured", "met"],
            [[t.name, t.measured, {True: "yes", False: "**no**", None: "not measured"}[t.met]] for t in report.targets],
        ),
        "",
    ]
    if report.chart:
        relative = os.path.relpath(report.chart, out.parent)
        lines += [f"![users/s per vendor, hook and baselines]({relative})", ""]
    elif report.chart_note:
        lines += [report.chart_note, ""]
    lines += [section.render() for section in report.sections]
    return "\n".join(lines).rstrip() + "\n"


def pg_server_version() -> str:
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW server_version")
                row = cursor.fetchone()
            return f"{row[0] if row else '?'} at 127.0.0.1:5432"
        finally:
            conn.close()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every scenario")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report path (BENCHMARKS.md)")
    parser.add_argument("--chart", type=Path, default=REPO / "benchmarks" / "throughput.png", help="chart path")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8", help="comma-separated subset of 1-8 (default: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    configure_environment()
    if args.worker:
        result = worker_stream(json.loads(args.worker))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    sizes = QUICK if args.quick else DEFAULT
    chosen = {int(s) for s in args.scenarios.split(",") if s.strip()}
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="userattrs-bench-"))
    progress(f"sizes {sizes.name}; work directory {workdir}")
    preload()
    report = Report(sizes)
    report.extras["parent_rss_mb"] = peak_rss_mb()
    report.extras["load_start"] = f"{os.getloadavg()[0]:.2f}"
    dlt_problem = bl.dlt_available()
    sandbox = Sandbox(workdir)
    CTX.url, CTX.sandbox_pid = sandbox.url, sandbox.pid
    set_connections(sandbox.url, sandbox.port)
    progress(f"sandbox at {sandbox.url} (pid {sandbox.pid})")
    sections: dict[int, Section] = {}
    try:
        # Capacity first: scenario 1's paragraph compares with it.
        if 5 in chosen:
            sections[5] = scenario_capacity(sandbox, sizes, report)
        if 1 in chosen:
            sections[1] = scenario_per_user(sandbox, sizes, report, dlt_problem)
        if 2 in chosen:
            sections[2] = scenario_mass_update(sandbox, sizes, report)
        if 3 in chosen:
            sections[3] = scenario_streaming(sandbox, sizes, report, workdir)
        if 4 in chosen:
            sections[4] = scenario_rate_limit(sandbox, sizes, report)
        if 6 in chosen:
            sections[6] = scenario_incremental(sizes, report)
        if 7 in chosen:
            sections[7] = scenario_quota(sandbox, sizes, report)
        if 8 in chosen:
            sections[8] = scenario_warehouses(sizes, report)
        if not sandbox.alive():
            raise RuntimeError(f"the sandbox died during the run; see {sandbox.log_path}")
    finally:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(os.environ["USERATTRS_BENCH_AIRFLOW_HOME"], ignore_errors=True)
    if 5 in sections and 1 in sections:
        sections[5] = scenario_capacity_refresh(sections[5], report)
    report.sections = [sections[k] for k in sorted(sections)]
    report.extras["load_end"] = f"{os.getloadavg()[0]:.2f}"
    if 1 in chosen:
        report.chart = make_chart(report, args.chart)
    text = render(report, args.out, started, time.perf_counter() - _STARTED, pg_server_version())
    args.out.write_text(text)
    print(text)
    progress(f"wrote {args.out}" + (f" and {report.chart}" if report.chart else ""))
    return 0


def scenario_quota(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    """Scenario 7 (``benchmarks/quota.py``): tasks sharing one vendor quota, and a deferring sync."""
    from benchmarks import quota

    results = quota.run_scenario(sandbox, quick=sizes.name == "quick")
    for name, measured, met in results.targets:
        report.targets.append(Target(name, measured, met))
    return Section(
        "7. Quota-bound delivery: tasks sharing one vendor quota, and deferral",
        "Each task is a process of its own with its own hook and pacer, as mapped chunks on workers are; they "
        "share nothing but the sandbox's account-wide quota. Then one `dag.test()` of a sync whose quota windows "
        "are longer than `defer_after`.",
        tables=[("", results.markdown)],
        bounds="The quota itself: no client can deliver faster than it allows. What a client loses is the time it "
        "leaves the quota unused (an AIMD cut after a 429, the last window's budget spent evenly to its reset) and "
        "each 429 costs a request of the quota.",
    )


def _markdown_of(module: str, users: int) -> tuple[str | None, str]:
    """Run ``python -m <module> --users N --out FILE`` in a fresh interpreter: its markdown, or None and why."""
    out = Path(tempfile.mkstemp(suffix=".md")[1])
    command = [sys.executable, "-m", module, "--users", str(users), "--out", str(out)]
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    text = out.read_text() if done.returncode == 0 else None
    out.unlink()
    return text, f"Failed: {done.stderr[-800:]}"


def scenario_warehouses(sizes: Sizes, report: Report) -> Section:
    """Scenario 8 (``benchmarks/warehouses.py``): the incremental diff per engine, time and peak memory."""
    users = 20_000 if sizes.name == "quick" else 1_000_000
    progress(f"scenario 8: incremental diff per warehouse engine, {users:,} rows")
    text, failure = _markdown_of("benchmarks.warehouses", users)
    section = Section("8. Incremental diff per warehouse engine (SQLite, PostgreSQL, DuckDB, MariaDB)")
    if text is None:
        section.intro = failure
        report.targets.append(Target("Warehouses: incremental diff on every local engine", "failed", False))
        return section
    section.tables.append(("", text))
    section.bounds = (
        "The engine's join of the segment with the state (one LEFT JOIN per attribute) and its sort by user id; "
        "rows that did not change never reach Python, so memory stays that of the engine's own buffers."
    )
    return section


def scenario_incremental(sizes: Sizes, report: Report) -> Section:
    """Incremental against full sync, in a fresh interpreter with a sandbox of its own (benchmarks.incremental)."""
    users = 20_000 if sizes.name == "quick" else 1_000_000
    progress(f"scenario 6: incremental sync, {users:,}-user segment, 1% changed")
    text, failure = _markdown_of("benchmarks.incremental", users)
    section = Section("6. Incremental sync against a full sync (`incremental=True`)")
    if text is None:
        section.intro = failure
        report.targets.append(Target("Incremental: 1% changed sends requests for those users only", "failed", False))
        return section
    section.tables.append(("", text))
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    changed = next(r for r in rows if "changed" in r[0] and "nothing" not in r[0])
    unchanged = next(r for r in rows if "nothing" in r[0])
    full = next(r for r in rows if "full sync" in r[0])
    expected_requests = math.ceil(users * 0.01 / FYNO_BATCH)
    met = int(changed[2].replace(",", "")) <= expected_requests + 1 and int(unchanged[2].replace(",", "")) == 0
    report.targets.append(
        Target(
            "Incremental, 1% of a segment changed: requests only for those users; no change: 0 requests",
            f"{changed[2].strip()} requests ({changed[3].strip()} s) against {full[2].strip()} ({full[3].strip()} s) "
            f"for a full sync; no change: {unchanged[2].strip()} requests",
            met,
        )
    )
    section.bounds = (
        "The incremental runs spend their time in the warehouse's diff query (one LEFT JOIN per attribute on the "
        "state table's primary key) and in reading the changed rows; the first run pays for writing the state "
        "(one row per user and attribute), after delivery."
    )
    return section


def scenario_capacity_refresh(section: Section, report: Report) -> Section:
    """Scenario 5 ran first; now that scenario 1 is done, its paragraph can compare with the hook."""
    rps = report.extras.get("capacity_rps")
    if not rps:
        return section
    best = 0.0
    for _, vendor, res in report.extras.get("s1_every_run", []):
        if "error" not in res and vendor in ("dx", "altatech", "usercom"):
            best = max(best, res["sandbox"].get("total", 0) / res["seconds"])
    if best:
        verdict = "so the sandbox was not what limited it" if best < 0.8 * rps else "close to the sandbox's ceiling"
        section.notes.append(
            f"The fastest per-request hook run of scenario 1 made {f_int(best)} requests/s, {f_pct(best, rps)} of "
            f"this ceiling: {verdict}."
        )
    return section


if __name__ == "__main__":
    raise SystemExit(main())
