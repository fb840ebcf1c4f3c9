"""A dry run: every user validated as the client would before sending, nothing sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult, UserUpdate
from airflow_provider_userattrs.sync import storage
from airflow_provider_userattrs.sync.progress import Log
from airflow_provider_userattrs.sync.report import DryRunPreview, PreviewUser, TryOutcome, sample_failures
from airflow_provider_userattrs.sync.sources import Item
from airflow_provider_userattrs.sync.tally import ChunkTally, settle

PREVIEW_USERS = 10
"""Users shown in a dry run's report, with the values that would be sent."""


class Validating(Protocol):
    @property
    def vendor_name(self) -> str: ...

    def validate(self, update: UserUpdate) -> tuple[UserUpdate | None, list[AttributeResult]]: ...


def dry_run(
    client: Validating, folder: storage.FailureFolder, try_number: int, items: Iterable[Item], log: Log
) -> TryOutcome:
    """Validate every user of ``items``; write the refusals to ``folder``'s dry-run failure file."""
    tally = ChunkTally()
    preview: list[PreviewUser] = []
    vendor = client.vendor_name
    for item in items:
        result = None if item.update is None else _validated(client, item.update, preview)
        settle(tally, item, result, vendor=vendor, try_number=try_number, resending=False)
    failure_file = folder.file("dry-run-failures.jsonl")
    storage.write_lines(failure_file, tally.rejected_lines)
    log.info(
        "Dry run: %d users would be sent, %d refused before sending; nothing was sent",
        tally.succeeded,
        tally.failed,
    )
    failures, truncated = sample_failures(tally.rejected_lines)
    return TryOutcome(
        succeeded=tally.succeeded,
        failed=tally.failed,
        retryable_users=0,
        failures=failures,
        failures_truncated=truncated,
        failure_file=str(failure_file),
        requests_sent=0,
        dry_run=DryRunPreview(would_send=tally.succeeded, preview=preview),
    )


def _validated(client: Validating, update: UserUpdate, preview: list[PreviewUser]) -> UserResult:
    sendable, problems = client.validate(update)
    result = UserResult(update.user_id, list(problems))
    if sendable is not None:
        result.results.extend(
            AttributeResult(sendable.user_id, k, Outcome.DELIVERED, v) for k, v in sendable.attributes.items()
        )
        if len(preview) < PREVIEW_USERS:
            preview.append(PreviewUser(sendable.user_id, dict(sendable.attributes)))
    return result
