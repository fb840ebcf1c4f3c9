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

This module only chooses and orders the scenarios (``benchmarks/scenarios/``, one module each) and writes
the report (``document.py``) and the chart (``chart.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import baselines as bl
from benchmarks.chart import make_chart
from benchmarks.document import pg_server_version, render
from benchmarks.environment import configure_environment, elapsed_seconds, preload, progress
from benchmarks.measure import peak_rss_mb
from benchmarks.processes import RESULT_PREFIX
from benchmarks.report import Report, Section
from benchmarks.sandbox import CTX, Sandbox, set_connections
from benchmarks.scenarios.capacity import scenario_capacity, scenario_capacity_refresh
from benchmarks.scenarios.incremental import scenario_incremental
from benchmarks.scenarios.mass_update import scenario_mass_update
from benchmarks.scenarios.per_user import scenario_per_user
from benchmarks.scenarios.quota import scenario_quota
from benchmarks.scenarios.rate_limit import scenario_rate_limit
from benchmarks.scenarios.streaming import scenario_streaming, worker_stream
from benchmarks.scenarios.warehouses import scenario_warehouses
from benchmarks.settings import DEFAULT, QUICK, REPO, Sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every scenario")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report path (BENCHMARKS.md)")
    parser.add_argument("--chart", type=Path, default=REPO / "benchmarks" / "throughput.png", help="chart path")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8", help="comma-separated subset of 1-8 (default: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_scenarios(
    chosen: set[int], sandbox: Sandbox, sizes: Sizes, report: Report, workdir: Path, dlt_problem: str | None
) -> dict[int, Section]:
    """The chosen scenarios, by number; capacity first, since scenario 1's paragraph compares with it."""
    sections: dict[int, Section] = {}
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
    return sections


def measure(chosen: set[int], sizes: Sizes, report: Report) -> dict[int, Section]:
    """Start the sandbox, run the chosen scenarios against it, then clean up: their sections."""
    workdir = Path(tempfile.mkdtemp(prefix="userattrs-bench-"))
    progress(f"sizes {sizes.name}; work directory {workdir}")
    preload()
    report.extras["parent_rss_mb"] = peak_rss_mb()
    report.extras["load_start"] = f"{os.getloadavg()[0]:.2f}"
    dlt_problem = bl.dlt_available()
    sandbox = Sandbox(workdir)
    CTX.url, CTX.sandbox_pid = sandbox.url, sandbox.pid
    set_connections(sandbox.url, sandbox.port)
    progress(f"sandbox at {sandbox.url} (pid {sandbox.pid})")
    try:
        return run_scenarios(chosen, sandbox, sizes, report, workdir, dlt_problem)
    finally:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(os.environ["USERATTRS_BENCH_AIRFLOW_HOME"], ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_environment()
    if args.worker:
        result = worker_stream(json.loads(args.worker))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    sizes = QUICK if args.quick else DEFAULT
    chosen = {int(s) for s in args.scenarios.split(",") if s.strip()}
    started = datetime.now(UTC)
    report = Report(sizes)
    sections = measure(chosen, sizes, report)
    if 5 in sections and 1 in sections:
        sections[5] = scenario_capacity_refresh(sections[5], report)
    report.sections = [sections[k] for k in sorted(sections)]
    report.extras["load_end"] = f"{os.getloadavg()[0]:.2f}"
    if 1 in chosen:
        report.chart = make_chart(report, args.chart)
    text = render(report, args.out, started, elapsed_seconds(), pg_server_version())
    args.out.write_text(text)
    print(text)
    progress(f"wrote {args.out}" + (f" and {report.chart}" if report.chart else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
