"""No quota, no slowdown: today's client against the client of a revision before issue 24, in the same run.

The package of ``BEFORE`` is extracted with ``git archive`` into a temporary folder (the working tree and its git
state are left alone); both clients then run the probes of :mod:`benchmarks.revisions` (per-user updates at
20 ms of latency, no quota, through ``get_hook`` and ``update_users``) in fresh interpreters against one sandbox,
taking turns round after round; the best round of each counts (the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path

from airflow_provider_userattrs.sandbox import SandboxServer
from benchmarks.revisions import measure
from benchmarks.settings import REPO

BEFORE = "93e07b4"
"""The last commit before issue 24's pacing."""
CASES = ("dx-20ms", "altatech-20ms")


def extract(revision: str, root: Path) -> Path:
    """The package as it was at ``revision``, under ``root`` (importable with ``root`` on ``PYTHONPATH``)."""
    archive = root / "package.tar"
    with open(archive, "wb") as out:
        subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", revision, "airflow_provider_userattrs"],
            check=True,
            stdout=out,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


def compare(rounds: int = 3, before: str = BEFORE) -> dict[str, tuple[float, float]]:
    """Per case: (best users/s of today's client, best users/s of ``before``'s), in the same run."""
    best: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="userattrs-before-") as root, SandboxServer(port=0) as sandbox:
        trees = {"today": REPO, "before": extract(before, Path(root))}
        for _ in range(rounds):
            for case in CASES:
                for name, tree in trees.items():
                    users_per_second, _ = measure(sandbox, tree, case)
                    best[(name, case)] = max(best.get((name, case), 0.0), users_per_second)
    return {case: (best[("today", case)], best[("before", case)]) for case in CASES}
