"""Today's client against the client of other commits, in the same run: did a change slow anything down?

``python -m benchmarks.revisions REV [REV ...]`` checks each revision out into a temporary git worktree and
runs the same probes, through the public hook API only (``get_hook``, ``update_users``), in a fresh
interpreter whose ``PYTHONPATH`` puts that worktree's package first, against one sandbox on a real port.
Revisions take turns, round after round, so that a busy machine slows them alike; the table gives the best
round of each (the least disturbed), and the ratio to the first revision named (the baseline).

Probes:

* ``dx-20ms`` and ``altatech-20ms``: per-user updates at 20 ms of latency, no quota (users/s);
* ``dx-quota``: a declared quota of 200 requests per sliding 5 s window, one process (share of the sustained
  rate used, and 429s);
* ``altatech-budget``: AltaTech's announced budget of 200 per 5 s window, one process (same figures).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_userattrs.sandbox import SandboxServer

REPO = Path(__file__).resolve().parents[1]
TOKEN = "sandbox-token"

PROBE = r"""
import json, os, sys, time
from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.results import UserUpdate

url, vendor, users, settings = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
token = os.environ["USERATTRS_BENCH_TOKEN"]
os.environ[f"AIRFLOW_CONN_BENCH_{vendor.upper()}"] = json.dumps({"conn_type": vendor, "host": url, "password": token})
hook = get_hook(f"bench_{vendor}", **settings)
ids = [f"u{i}@example.com" if vendor == "dx" else f"u{i}" for i in range(users)]
started = time.perf_counter()
ok = sum(1 for r in hook.update_users(UserUpdate(i, {"plan": "pro"}) for i in ids) if r.ok)
elapsed = time.perf_counter() - started
print(json.dumps({"ok": ok, "users": users, "seconds": elapsed, "requests": hook.requests_sent}))
"""

CASES = {
    "dx-20ms": ("dx", {"latency": 0.02}, {}, 5000),
    "altatech-20ms": ("altatech", {"latency": 0.02}, {}, 5000),
    "dx-quota": (
        "dx",
        {"quota": {"dx": {"requests": 200, "window_seconds": 5, "kind": "sliding"}}},
        {"quota_requests": 200, "quota_window_seconds": 5},
        1200,
    ),
    "altatech-budget": ("altatech", {"quota": {"altatech": {"requests": 200, "window_seconds": 5}}}, {}, 1200),
}


def worktree(rev: str, root: Path) -> Path:
    """``rev`` checked out under ``root`` (the working tree itself for ``.``)."""
    if rev == ".":
        return REPO
    path = root / rev.replace("/", "_")
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(path), rev],
        check=True,
        capture_output=True,
    )
    return path


def probe(tree: Path, url: str, case: str) -> dict[str, float]:
    vendor, _, settings, users = CASES[case]
    env = {**os.environ, "PYTHONPATH": str(tree), "USERATTRS_BENCH_TOKEN": TOKEN}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url, vendor, str(users), json.dumps(settings)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{case} at {tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(sandbox: SandboxServer, tree: Path, case: str) -> tuple[float, float]:
    """(the figure of merit, the share of requests answered 429) of one probe on a fresh sandbox."""
    _, faults, _, _ = CASES[case]
    sandbox.reset()
    sandbox.set_faults(**faults)
    result = probe(tree, sandbox.url, case)
    stats = sandbox.stats()
    throttled = stats["requests"]["by_status"].get("429", 0) / max(1, stats["requests"]["total"])
    if "quota" not in faults:
        return result["users"] / result["seconds"], throttled
    quota = next(iter(faults["quota"].values()))
    sustained = quota["requests"] / quota["window_seconds"]
    accepted = stats["requests"]["total"] - stats["requests"]["by_status"].get("429", 0)
    return accepted / result["seconds"] / sustained, throttled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.revisions", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "revisions", nargs="+", help="git revisions; '.' is the working tree; the first is the baseline"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    best: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="userattrs-revs-") as root, SandboxServer(port=0) as sandbox:
        trees = {rev: worktree(rev, Path(root)) for rev in args.revisions}
        try:
            for _ in range(args.rounds):
                for case in cases:
                    for rev, tree in trees.items():
                        figure, throttled = measure(sandbox, tree, case)
                        if figure > best.get((rev, case), (-1.0, 0.0))[0]:
                            best[(rev, case)] = (figure, throttled)
        finally:
            for tree in trees.values():
                if tree != REPO:
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    base = args.revisions[0]
    print(f"| case | {' | '.join(args.revisions)} |")
    print("|---|" + "---|" * len(args.revisions))
    for case in cases:
        unit = "users/s" if "quota" not in CASES[case][1] else "of the sustained rate"
        cells = []
        for rev in args.revisions:
            figure, throttled = best[(rev, case)]
            shown = f"{figure:,.0f} {unit}" if unit == "users/s" else f"{figure:.1%} {unit}, {throttled:.1%} 429s"
            ratio = figure / best[(base, case)][0]
            cells.append(shown if rev == base else f"{shown} ({ratio:.2f}x)")
        print(f"| {case} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
