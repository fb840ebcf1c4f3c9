"""The report's pieces: number formats, Markdown tables, sections, targets, and the row of one measured case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.settings import LABELS, Sizes


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


def hook_row(
    vendor: str, client: str, users: int, result: dict[str, Any], minimum: int, ratios: list[str]
) -> list[str]:
    """One client's row of a per-user table (scenarios 1 and 2): time, rate, requests, CPU shares, memory."""
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
