"""``python -m airflow_provider_userattrs.replay FAILURE_FILE --conn-id CONN``: resend what failed.

Only transient failures are resent (a rejection would be rejected again). What a replay delivers is
recorded beside the failure file, so that running it twice sends nothing the second time. What still
fails goes to a new failure file, printed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.hooks import get_hook
from airflow_provider_userattrs.sync import sources, storage


def replay(failure_file: str, conn_id: str, *, dry_run: bool = False, **hook_params: Any) -> dict[str, Any]:
    """Resend the transient failures of ``failure_file`` through ``conn_id``; the summary as a dict."""
    ledger = storage.ReplayLedger(failure_file)
    items = list(sources.replay_items([failure_file], exclude=ledger.delivered()))
    summary: dict[str, Any] = {"failure_file": failure_file, "to_resend": len(items), "dry_run": dry_run}
    if dry_run or not items:
        return {**summary, "delivered": 0, "failed": 0, "requests_sent": 0}
    hook = get_hook(conn_id, **{k: v for k, v in hook_params.items() if v is not None})
    updates = [dataclasses.replace(item.update, ref=item.position) for item in items if item.update is not None]
    delivered: list[dict[str, object]] = []
    still_failing: list[dict[str, object]] = []
    with hook:
        for result in hook.update_users(updates):
            delivered.extend(
                {"user_id": r.user_id, "attribute": r.attribute} for r in result.results if not r.outcome.is_failure
            )
            still_failing.extend({"position": result.ref, **r.to_dict()} for r in result.failures)
        sent = hook.requests_sent
    if delivered:
        ledger.record(delivered, f"cli-{int(time.time() * 1000)}")
    summary.update({"delivered": len(delivered), "failed": len(still_failing), "requests_sent": sent})
    if still_failing:
        target = ObjectStoragePath(failure_file).parent / f"replay-{int(time.time())}-failures.jsonl"
        storage.write_lines(target, still_failing)
        summary["new_failure_file"] = str(target)
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
