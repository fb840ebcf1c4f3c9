"""Scenario 8: the incremental diff per warehouse engine, measured by ``benchmarks.warehouses``.

That module runs alone too (``python -m benchmarks.warehouses``); here it runs in a fresh interpreter and its
Markdown becomes a section.
"""

from __future__ import annotations

from benchmarks.environment import progress
from benchmarks.processes import module_markdown
from benchmarks.report import Report, Section, Target
from benchmarks.settings import Sizes


def scenario_warehouses(sizes: Sizes, report: Report) -> Section:
    """Scenario 8 (``benchmarks/warehouses.py``): the incremental diff per engine, time and peak memory."""
    users = 20_000 if sizes.name == "quick" else 1_000_000
    progress(f"scenario 8: incremental diff per warehouse engine, {users:,} rows")
    text, failure = module_markdown("benchmarks.warehouses", users)
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
