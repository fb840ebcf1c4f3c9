"""Scenario 7: tasks sharing one vendor quota, and a deferring sync, measured by ``benchmarks.quota``.

That module runs alone too (``python -m benchmarks.quota``, with a sandbox of its own); here it runs against
this run's sandbox and its Markdown and targets join the report.
"""

from __future__ import annotations

from benchmarks import quota
from benchmarks.report import Report, Section, Target
from benchmarks.sandbox import Sandbox
from benchmarks.settings import Sizes


def scenario_quota(sandbox: Sandbox, sizes: Sizes, report: Report) -> Section:
    """Scenario 7 (``benchmarks/quota.py``): tasks sharing one vendor quota, and a deferring sync."""
    quick = sizes.name == "quick"
    results = quota.run_scenario(sandbox, quick=quick, repeat=1 if quick else 2)
    for name, measured, met in results.targets:
        report.targets.append(Target(name, measured, met))
    return Section(
        "7. Quota-bound delivery: tasks sharing one vendor quota, and deferral",
        "Each task is a process of its own with its own hook and pacer, as mapped chunks on workers are; they "
        "share nothing but the sandbox's account-wide quota (and, in the store cases, the Redis a Celery "
        "deployment has as its broker). Then the per-user rate without a quota against the client before issue "
        "24, and one `dag.test()` of a sync whose quota windows are longer than `defer_after`.",
        tables=[("", results.markdown)],
        bounds="The quota itself: no client can deliver faster than it allows. What a client loses is the time it "
        "leaves the quota unused (the start below its share, a share a finished task left until a probe finds it, "
        "the last window's budget spent evenly to its reset) and each 429 costs a request of the quota.",
    )
