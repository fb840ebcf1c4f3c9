"""BENCHMARKS.md itself: the header (date, commit, machine, packages), the targets, then every section."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path

from benchmarks.report import Report, table
from benchmarks.settings import REPO


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
