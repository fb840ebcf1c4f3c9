"""Scenario 6: incremental against full sync, measured by ``benchmarks.incremental`` in a fresh interpreter.

That module runs alone too (``python -m benchmarks.incremental``) and has a sandbox of its own; this one turns
its Markdown into a section and reads its target from the table.
"""

from __future__ import annotations

import math

from benchmarks.environment import progress
from benchmarks.processes import module_markdown
from benchmarks.report import Report, Section, Target
from benchmarks.settings import FYNO_BATCH, Sizes


def scenario_incremental(sizes: Sizes, report: Report) -> Section:
    """Incremental against full sync, in a fresh interpreter with a sandbox of its own (benchmarks.incremental)."""
    users = 20_000 if sizes.name == "quick" else 1_000_000
    progress(f"scenario 6: incremental sync, {users:,}-user segment, 1% changed")
    text, failure = module_markdown("benchmarks.incremental", users)
    section = Section("6. Incremental sync against a full sync (`incremental=True`)")
    if text is None:
        section.intro = failure
        report.targets.append(Target("Incremental: 1% changed sends requests for those users only", "failed", False))
        return section
    section.tables.append(("", text))
    report.targets.append(_target(text, users))
    section.bounds = (
        "The incremental runs spend their time in the warehouse's diff query (one LEFT JOIN per attribute on the "
        "state table's primary key) and in reading the changed rows; the first run pays for writing the state "
        "(one row per user and attribute), after delivery."
    )
    return section


def _target(text: str, users: int) -> Target:
    """From the table's rows: the 1 % change sends only its users' requests, no change sends none."""
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    changed = next(r for r in rows if "changed" in r[0] and "nothing" not in r[0])
    unchanged = next(r for r in rows if "nothing" in r[0])
    full = next(r for r in rows if "full sync" in r[0])
    expected_requests = math.ceil(users * 0.01 / FYNO_BATCH)
    met = int(changed[2].replace(",", "")) <= expected_requests + 1 and int(unchanged[2].replace(",", "")) == 0
    return Target(
        "Incremental, 1% of a segment changed: requests only for those users; no change: 0 requests",
        f"{changed[2].strip()} requests ({changed[3].strip()} s) against {full[2].strip()} ({full[3].strip()} s) "
        f"for a full sync; no change: {unchanged[2].strip()} requests",
        met,
    )
