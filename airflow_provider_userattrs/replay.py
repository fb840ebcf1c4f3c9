"""``python -m airflow_provider_userattrs.replay FAILURE_FILE --conn-id CONN``: resend what failed.

Only transient failures are resent (a rejection would be rejected again). The replay runs through the sync
engine, as an operator's ``replay_from`` does: what it delivers is recorded beside the failure file (its
ledger) chunk by chunk, so that running it twice sends nothing the second time. What still fails goes to a
new failure file (``replay-<time>/failures.jsonl`` beside the one replayed), printed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.client import Client
from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.sync import sources, storage
from airflow_provider_userattrs.sync.checkpoint import MemoryCheckpoint
from airflow_provider_userattrs.sync.engine import SyncEngine
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.progress import Progress

TRY_NUMBER = 1
"""A command-line replay is one try: nothing retries it but running the command again."""
PROGRESS_INTERVAL = 30.0


class _StderrLog:
    """Progress lines go to stderr: stdout holds the summary alone, for scripts to parse."""

    def info(self, msg: str, /, *args: object) -> None:
        print(msg % args, file=sys.stderr)


def _sender(conn_id: str, **hook_params: Any) -> Client:
    """What the engine sends through: the client of the connection's hook (closed by the caller)."""
    return get_hook(conn_id, **hook_params).get_conn()


def replay(failure_file: str, conn_id: str, *, dry_run: bool = False, **hook_params: Any) -> dict[str, Any]:
    """Resend the transient failures of ``failure_file`` through ``conn_id``; the summary as a dict.

    ``delivered`` and ``failed`` count users, as the sync report does (``delivered + failed == to_resend``).
    """
    ledger = storage.ReplayLedger(failure_file)
    already = ledger.delivered()

    def items(point: ResumePoint) -> Iterator[sources.Item]:
        return sources.replay_items([failure_file], start=point.offset, exclude=already)

    to_resend = sum(1 for _ in items(ResumePoint()))
    summary: dict[str, Any] = {"failure_file": failure_file, "to_resend": to_resend, "dry_run": dry_run}
    if dry_run or not to_resend:
        return {**summary, "delivered": 0, "failed": 0, "requests_sent": 0}
    folder = storage.FailureFolder(ObjectStoragePath(failure_file).parent / f"replay-{int(time.time() * 1000)}")
    with _sender(conn_id, **{k: v for k, v in hook_params.items() if v is not None}) as sender:
        progress = Progress(_StderrLog(), PROGRESS_INTERVAL, to_resend)
        engine = SyncEngine(sender, folder, TRY_NUMBER, progress=progress, ledger=ledger)
        outcome = engine.run(MemoryCheckpoint(), items)
    summary.update({"delivered": outcome.succeeded, "failed": outcome.failed, "requests_sent": outcome.requests_sent})
    if outcome.failed:
        summary["new_failure_file"] = outcome.failure_file
    elif folder.path.exists():  # nothing failed: the engine's empty failure file would only be clutter
        folder.path.rmdir(recursive=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="userattrs-replay", description=__doc__.splitlines()[0])
    parser.add_argument("failure_file", help="a failures.jsonl written by a sync (any ObjectStoragePath URL)")
    parser.add_argument("--conn-id", required=True, help="the vendor connection to send through")
    parser.add_argument("--dry-run", action="store_true", help="count what would be resent; send nothing")
    parser.add_argument("--concurrency", type=int, help="override the connection's concurrency")
    args = parser.parse_args(argv)
    summary = replay(args.failure_file, args.conn_id, dry_run=args.dry_run, concurrency=args.concurrency)
    json.dump(summary, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 1 if summary.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
