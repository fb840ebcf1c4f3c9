"""What every benchmark module shares: the repository, the sandbox connections' ids, labels and run sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks import baselines as bl

REPO = Path(__file__).resolve().parents[1]
CONN_IDS = {vendor: f"bench_{vendor}" for vendor in bl.VENDORS}
LABELS = {"altatech": "AltaTech", "fyno": "Fyno", "dx": "DX", "usercom": "User.com"}
HTTP_CONN_ID = "bench_http"
MASS_CHUNK = 1000
FYNO_BATCH = 100
CONCURRENCY = 32


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
