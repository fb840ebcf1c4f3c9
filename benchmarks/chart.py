"""benchmarks/throughput.png: users/s per vendor in scenario 1, the hook beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import baselines as bl
from benchmarks.report import Report
from benchmarks.settings import LABELS

SERIES = [("hook", "provider hook"), ("naive", "naive requests.post"), ("httphook", "HttpHook"), ("dlt", "dlt")]


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
    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4.2), squeeze=False)
    for axis, (latency, vendors) in zip(axes[0], sorted(data.items()), strict=False):
        _bars(axis, vendors)
        axis.set_title(f"sandbox latency {latency * 1000:.0f} ms, {max(report.sizes.per_user):,} users (hook)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(SERIES), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _bars(axis: Any, vendors: dict[str, dict[str, float]]) -> None:
    """One latency's panel: a group of bars per vendor, one bar per client."""
    names = [v for v in bl.VENDORS if v in vendors]
    width = 0.8 / len(SERIES)
    for i, (key, label) in enumerate(SERIES):
        values = [vendors[v].get(key, 0.0) for v in names]
        positions = [j + (i - (len(SERIES) - 1) / 2) * width for j in range(len(names))]
        axis.bar(positions, values, width, label=label)
    axis.set_xticks(range(len(names)), [LABELS[v] for v in names])
    axis.set_yscale("log")
    axis.set_ylabel("users/s (log)")
    axis.grid(axis="y", which="both", alpha=0.3)
