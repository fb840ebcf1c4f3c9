"""The control flow both operators share: source, chunks, checkpoint, failure file, report, threshold.

A sync runs in chunks of ``checkpoint_every`` users. After each chunk its failures are written (one part
file for permanent rejections, one for transient failures) and the checkpoint moves past it. A retried
try therefore resends at most the chunk that was in flight, and first replays the transient failures
of the tries before it. A user is counted exactly once: when it ends delivered, or rejected; a user
that only failed transiently is counted when its replay settles it.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_userattrs.config import truthy
from airflow_provider_userattrs.errors import ConnectionConfigError
from airflow_provider_userattrs.hooks import VendorAuthError, get_hook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.operators import incremental as incremental_state
from airflow_provider_userattrs.operators import sources, storage
from airflow_provider_userattrs.operators.sources import Item
from airflow_provider_userattrs.results import AttributeResult, Outcome, UserResult

MAX_REPORTED_FAILURES = 100
MAP_INDEX_TEMPLATE = "{{ userattrs_chunk }}"
"""Names each mapped chunk in the UI by its source (set in ``execute``)."""
REPORT_KEY = "report"


def _fresh_state() -> dict[str, Any]:
    return {
        "version": 1,
        "offset": 0,
        "succeeded": 0,
        "failed": 0,
        "final_parts": [],
        "replay": {"parts": [], "pos": 0},
        "retry_parts": [],
        "requests_sent": 0,
        "skipped": 0,
    }


@dataclasses.dataclass
class ChunkTally:
    """What one chunk settled, and the failure lines it produced."""

    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    final_lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    retry_lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    state_updates: list[tuple[str, str, str | None]] = dataclasses.field(default_factory=list)
    """Incremental sync: (user, attribute, value text) the vendor accepted, to write to the state."""
    delivered_keys: list[dict[str, Any]] | None = None
    """(user, attribute) pairs delivered, kept only when replaying a failure file (for its ledger)."""


class UserAttributesSyncOperator(BaseOperator):
    """Base of :class:`UpdateUserAttributesOperator` and :class:`MassUpdateOperator`; not used directly."""

    template_fields: Sequence[str] = (
        "conn_id",
        "sql",
        "sql_conn_id",
        "parameters",
        "failure_path",
        "replay_from",
        "max_failure_ratio",
        "is_dry_run",
        "state_key",
        "full_refresh",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "parameters": "json"}
    diffs_sql_in_warehouse: ClassVar[bool] = False
    """Whether an incremental sync of a SQL source is diffed by the warehouse (else in object storage)."""
    ui_color = "#dff0ea"
    ui_fgcolor = "#1b4332"

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        max_failure_ratio: float | str = 0.0,
        dry_run: bool | str = False,
        failure_path: str | None = None,
        replay_from: str | None = None,
        checkpoint_every: int = 2000,
        fetch_size: int = 10_000,
        progress_interval: float = 30.0,
        hook_params: Mapping[str, Any] | None = None,
        incremental: bool = False,
        state_key: str | None = None,
        full_refresh: bool | str = False,
        remove_missing: bool = True,
        state_table: str = incremental_state.STATE_TABLE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        super().__init__(**kwargs)
        # Nothing here touches a connection or a database: DAG parsing stays fast.
        self.conn_id = conn_id
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.max_failure_ratio = max_failure_ratio
        # Not `self.dry_run`: BaseOperator already has a dry_run() method (it logs the rendered templates).
        self.is_dry_run = dry_run
        self.failure_path = failure_path
        self.replay_from = replay_from
        self.checkpoint_every = checkpoint_every
        self.fetch_size = fetch_size
        self.progress_interval = progress_interval
        self.hook_params = dict(hook_params or {})
        self.incremental = incremental
        self.state_key = state_key
        self.full_refresh = full_refresh
        self.remove_missing = remove_missing
        self.state_table = state_table
        self._state: Any = None
        self._mapped_index: int | None = None
        if not isinstance(max_failure_ratio, str):
            _ratio(max_failure_ratio)  # a templated value is checked once rendered
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """As ``BaseOperator.partial``, with the chunk label as the default ``map_index_template``."""
        from airflow.sdk.bases import operator as sdk_operator

        kwargs.setdefault("map_index_template", MAP_INDEX_TEMPLATE)
        return sdk_operator.partial(cls, **kwargs)

    # -- to be provided by the two operators ------------------------------------------------------

    def source_items(self, start: int) -> Iterator[Item]:
        """The users to sync, from source position ``start`` on."""
        raise NotImplementedError

    def source_size(self) -> int | None:
        """How many users the source holds, when known without reading it (for the ETA)."""
        return None

    def changed_items(self, state: Any, full_refresh: bool) -> Iterator[Item]:
        """Incremental sync: the users whose values differ from the state (and those who left)."""
        raise NotImplementedError(f"{type(self).__name__} has no incremental mode")

    def source_label(self) -> str:
        return f"sql on {self.sql_conn_id}" if self.sql else "records"

    # -- shared helpers ------------------------------------------------------------------------------

    def _sql_rows(self) -> Iterator[dict[str, Any]]:
        if not self.sql_conn_id:
            raise AirflowFailException(f"{self.task_id}: sql needs sql_conn_id (an Airflow SQL connection)")
        return sources.stream_sql(self.sql_conn_id, self.sql or "", self.parameters, self.fetch_size)

    def get_hook(self) -> UserAttributesHook:
        """The vendor hook, chosen by the connection's type."""
        return get_hook(self.conn_id, **self.hook_params)

    # -- execution -----------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        ti = context["ti"]
        self.max_failure_ratio = _ratio(self.max_failure_ratio)
        self.is_dry_run = truthy(self.is_dry_run)
        map_index = int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1)
        self._mapped_index = map_index
        context["userattrs_chunk"] = self._chunk_label()
        try:
            hook = self.get_hook()
            hook.check_config()  # a connection that can never work fails this try, not every retry
            vendor = hook.vendor
        except ConnectionConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        root = self.failure_path or storage.default_failure_root()
        folder = storage.task_folder(root, ti.dag_id, ti.run_id, ti.task_id, map_index)
        if self.replay_from:
            folder = folder / "replay"
        try_number = int(getattr(ti, "try_number", 1) or 1)
        report: dict[str, Any] = {"vendor": vendor, "conn_id": self.conn_id, "dry_run": self.is_dry_run}
        # Objects alive now (Airflow's imports, the DAG) are moved out of the collector's sight: a sync
        # allocates a few containers per user, and each full collection would re-scan them (measured: half
        # of the client's CPU on a 1M-id mass update).
        gc.collect()
        gc.freeze()
        try:
            if self.is_dry_run:
                report.update(self._dry_run(hook, folder, try_number))
            elif self.incremental and not self.replay_from:
                report.update(self._incremental_sync(context, hook, folder, try_number, root))
            else:
                report.update(self._sync(context, hook, folder, try_number))
        except VendorAuthError as exc:
            report.update({"error": str(exc)})
            self._push(ti, report, started)
            raise AirflowFailException(str(exc)) from None
        finally:
            hook.close()
            gc.unfreeze()
        self._push(ti, report, started)
        self._judge(report, ti)
        return report

    def _push(self, ti: Any, report: dict[str, Any], started: float) -> None:
        elapsed = time.monotonic() - started
        report["duration_seconds"] = round(elapsed, 3)
        report.setdefault("total", 0)
        report["users_per_second"] = round(report["total"] / elapsed, 1) if elapsed > 0 else None
        ti.xcom_push(key=REPORT_KEY, value=report)

    def _judge(self, report: dict[str, Any], ti: Any) -> None:
        """Fail the task when the run is not clean enough; transient failures get Airflow's retries."""
        total, failed = report["total"], report["failed"]
        retries_left = int(getattr(ti, "try_number", 1) or 1) <= int(self.retries or 0)
        if report.get("retryable_users") and retries_left:
            raise AirflowException(
                f"{report['retryable_users']} users failed transiently after the HTTP retries; the next try "
                f"resends only them (failures: {report.get('failure_file')})"
            )
        ratio, limit = (failed / total if total else 0.0), _ratio(self.max_failure_ratio)
        if ratio > limit:
            raise AirflowFailException(
                f"{failed} of {total} users failed ({ratio:.2%} > max_failure_ratio {limit:.2%}); "
                f"every failure with its reason: {report.get('failure_file')}"
            )

    def _chunk_label(self) -> str:
        size = self.source_size()
        return f"{self.source_label()} ({size} users)" if size is not None else self.source_label()

    # -- dry run -------------------------------------------------------------------------------------

    def _dry_run(self, hook: UserAttributesHook, folder: Any, try_number: int) -> dict[str, Any]:
        tally = ChunkTally()
        preview: list[dict[str, Any]] = []
        for item in self._items(0):
            if item.update is None:
                self._settle(tally, item, None, try_number, hook.vendor)
                continue
            sendable, problems = hook.validate(item.update)
            result = UserResult(item.update.user_id, list(problems))
            if sendable is not None:
                result.results.extend(
                    AttributeResult(sendable.user_id, k, Outcome.DELIVERED, v) for k, v in sendable.attributes.items()
                )
                if len(preview) < 10:
                    preview.append({"user_id": sendable.user_id, "attributes": dict(sendable.attributes)})
            self._settle(tally, item, result, try_number, hook.vendor)
        failure_file = folder / "dry-run-failures.jsonl"
        storage.write_lines(failure_file, tally.final_lines)
        self.log.info(
            "Dry run: %d users would be sent, %d refused before sending; nothing was sent",
            tally.succeeded,
            tally.failed,
        )
        return {
            **self._summary(tally.succeeded, tally.failed, 0, tally.final_lines, str(failure_file)),
            "would_send": tally.succeeded,
            "preview": preview,
            "requests_sent": 0,
        }

    # -- the real sync -------------------------------------------------------------------------------

    def _items(self, offset: int) -> Iterator[Item]:
        if self.replay_from:
            delivered = storage.ReplayLedger(self.replay_from).delivered()
            return sources.replay_items([self.replay_from], start=offset, exclude=delivered, keep_counted=False)
        return self.source_items(offset)

    def _sync(self, context: Any, hook: UserAttributesHook, folder: Any, try_number: int) -> dict[str, Any]:
        checkpoint = storage.checkpoint_store(context, folder)
        state = checkpoint.load() or _fresh_state()
        resumed = {"offset": state["offset"], "replayed_users": 0}
        if state["offset"] or state["retry_parts"] or state["replay"]["parts"]:
            self.log.info(
                "Resuming from the checkpoint of an earlier try: %d source rows already settled, transient "
                "failures of %d part files to resend first",
                state["offset"],
                len(state["retry_parts"]) + len(state["replay"]["parts"]),
            )
        # What earlier tries left to resend is replayed first, then the source continues where it stopped.
        state["replay"] = {
            "parts": state["replay"]["parts"] + [p["path"] for p in state["retry_parts"]],
            "pos": state["replay"]["pos"],
        }
        state["retry_parts"] = []
        progress = _Progress(self.log, self.progress_interval, self.source_size(), state["offset"])
        chunk_number = itertools.count(len(state["final_parts"]) + 1000 * (try_number - 1))

        replay_parts = list(state["replay"]["parts"])
        if replay_parts:
            replayed = sources.replay_items(replay_parts, start=state["replay"]["pos"])
            for chunk in _batched(replayed, self.checkpoint_every):
                self._run_chunk(hook, chunk, folder, state, next(chunk_number), try_number)
                state["replay"]["pos"] += len(chunk)
                resumed["replayed_users"] += len(chunk)
                checkpoint.save(state)
                progress.advance(len(chunk))
            state["replay"] = {"parts": [], "pos": 0}
            checkpoint.save(state)

        for chunk in _batched(self._items(state["offset"]), self.checkpoint_every):
            self._run_chunk(hook, chunk, folder, state, next(chunk_number), try_number)
            state["offset"] += len(chunk)
            checkpoint.save(state)
            progress.advance(len(chunk))

        progress.finish()
        summary = self._close_out(folder / "failures.jsonl", state, try_number)
        if not summary["retryable_users"]:
            checkpoint.clear()  # a clean finish: a later manual re-run starts from scratch
        summary["resumed"] = resumed
        return summary

    def _incremental_sync(
        self, context: Any, hook: UserAttributesHook, folder: Any, try_number: int, root: str
    ) -> dict[str, Any]:
        """Send what changed since the last delivered values; the state itself is the checkpoint.

        A retried try recomputes the difference: what an earlier try delivered is no longer different.
        """
        ti = context["ti"]
        key = self.state_key or f"{ti.dag_id}.{ti.task_id}"
        full_refresh = truthy(self.full_refresh)
        if self.sql and self.diffs_sql_in_warehouse:
            self._state = incremental_state.WarehouseState(str(self.sql_conn_id), key, self.state_table)
            where = f"{self.state_table} in the warehouse ({self.sql_conn_id})"
        else:
            self._state = incremental_state.ObjectState(root, key)
            where = str(self._state.path)
        self.log.info("Incremental sync %r (state: %s)%s", key, where, ", full refresh" if full_refresh else "")
        progress = _Progress(self.log, self.progress_interval, None, 0)
        state = _fresh_state()
        changed = removed = 0
        number = itertools.count(1000 * (try_number - 1))
        try:
            for chunk in _batched(self.changed_items(self._state, full_refresh), self.checkpoint_every):
                tally = self._run_chunk(hook, chunk, folder, state, next(number), try_number)
                self._state.record(tally.state_updates)  # after delivery, never before
                changed += sum(1 for item in chunk if not item.removal)
                removed += sum(1 for item in chunk if item.removal)
                progress.advance(len(chunk))
        finally:
            self._state.close()
        progress.finish()
        summary = self._close_out(folder / f"failures-try{try_number}.jsonl", state, try_number)
        summary.update(
            {
                "incremental": {
                    "state_key": key,
                    "state": where,
                    "full_refresh": full_refresh,
                    "changed_users": changed,
                    "removed_users": removed,
                },
            }
        )
        return summary

    def _close_out(self, failure_file: Any, state: dict[str, Any], try_number: int) -> dict[str, Any]:
        """The report of a try: one failure file from the part files, counts, a sample of failures."""
        pending = sum(int(p["uncounted"]) for p in state["retry_parts"])
        parts = state["final_parts"] + [p["path"] for p in state["retry_parts"]]
        storage.concatenate(failure_file, parts)
        sample = (line for part in parts for line in storage.read_lines(part))
        summary = self._summary(state["succeeded"], state["failed"] + pending, pending, sample, str(failure_file))
        summary.update(
            {
                "requests_sent": state["requests_sent"],
                "try_number": try_number,
                "skipped_attributes": state.get("skipped", 0),
            }
        )
        return summary

    def _run_chunk(
        self,
        hook: UserAttributesHook,
        chunk: list[Item],
        folder: Any,
        state: dict[str, Any],
        number: int,
        try_number: int,
    ) -> ChunkTally:
        """Send one chunk and record what it settled (failure parts, counts, requests) in ``state``."""
        before = hook.requests_sent
        tally = self._send_chunk(hook, chunk, try_number)
        self._record_chunk(folder, state, tally, number, try_number)
        state["requests_sent"] += hook.requests_sent - before
        return tally

    def _record_chunk(
        self, folder: Any, state: dict[str, Any], tally: ChunkTally, number: int, try_number: int
    ) -> None:
        if tally.delivered_keys and self.replay_from:
            ledger = storage.ReplayLedger(self.replay_from)
            # A unique name per replayed chunk: object stores cannot append, and runs must not overwrite.
            ledger.record(tally.delivered_keys, f"{time.time_ns()}-try{try_number}-{number}")
        if tally.final_lines:
            path = folder / "parts" / f"try{try_number}-{number:06d}-rejected.jsonl"
            storage.write_lines(path, tally.final_lines)
            state["final_parts"].append(str(path))
        if tally.retry_lines:
            path = folder / "parts" / f"try{try_number}-{number:06d}-transient.jsonl"
            storage.write_lines(path, tally.retry_lines)
            state["retry_parts"].append({"path": str(path), "uncounted": tally.pending})
        state["succeeded"] += tally.succeeded
        state["failed"] += tally.failed
        state["skipped"] = state.get("skipped", 0) + tally.skipped

    def _send_chunk(self, hook: UserAttributesHook, chunk: list[Item], try_number: int) -> ChunkTally:
        tally = ChunkTally(delivered_keys=[] if self.replay_from else None)
        by_position = {item.position: item for item in chunk}
        updates = [dataclasses.replace(item.update, ref=item.position) for item in chunk if item.update is not None]
        for item in chunk:
            if item.update is None:
                self._settle(tally, item, None, try_number, hook.vendor)
        for result in hook.update_users(updates):
            self._settle(tally, by_position[result.ref], result, try_number, hook.vendor)
        return tally

    def _settle(self, tally: ChunkTally, item: Item, result: UserResult | None, try_number: int, vendor: str) -> None:
        """Count one user once, and turn its failures into lines of the failure file."""
        base = {"position": item.position, "vendor": vendor, "try_number": try_number}
        if result is None:  # the record could not become an update at all
            tally.failed += 1
            tally.final_lines.append(
                {
                    **base,
                    "user_id": None,
                    "attribute": None,
                    "outcome": Outcome.REJECTED.value,
                    "value": None,
                    "reason": item.problem,
                    "retryable": False,
                }
            )
            return
        tally.skipped += sum(1 for r in result.results if r.outcome is Outcome.SKIPPED)
        permanent = [r for r in result.results if r.outcome is Outcome.REJECTED]
        transient = [r for r in result.results if r.outcome is Outcome.FAILED]
        counted = item.counted
        if not counted:
            if permanent:
                tally.failed += 1
            elif transient:
                tally.pending += 1
            else:
                tally.succeeded += 1
        if item.state is not None and item.state_user is not None:
            tally.state_updates.extend(
                (item.state_user, r.attribute, item.state.get(r.attribute))
                for r in result.results
                if r.outcome in (Outcome.DELIVERED, Outcome.SKIPPED)
            )
        if tally.delivered_keys is not None:
            tally.delivered_keys.extend(
                {"user_id": r.user_id, "attribute": r.attribute} for r in result.results if not r.outcome.is_failure
            )
        for r in permanent:
            tally.final_lines.append({**base, **r.to_dict()})
        for r in transient:
            # A user already counted as failed (it also has a rejection) is not counted again on replay.
            tally.retry_lines.append({**base, **r.to_dict(), "counted": counted or bool(permanent)})

    @staticmethod
    def _summary(
        succeeded: int, failed: int, pending: int, lines: Iterable[dict[str, Any]], failure_file: str
    ) -> dict[str, Any]:
        sample = list(itertools.islice(lines, MAX_REPORTED_FAILURES + 1))
        return {
            "total": succeeded + failed,
            "succeeded": succeeded,
            "failed": failed,
            "retryable_users": pending,
            "failures": [
                {
                    "user_id": line.get("user_id"),
                    "attribute": line.get("attribute"),
                    "reason": line.get("reason"),
                    "retryable": bool(line.get("retryable")),
                }
                for line in sample[:MAX_REPORTED_FAILURES]
            ],
            "failures_truncated": len(sample) > MAX_REPORTED_FAILURES,
            "failure_file": failure_file,
        }


def _ratio(value: Any) -> float:
    ratio = float(value)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"max_failure_ratio must be between 0 and 1, got {value!r}")
    return ratio


def _batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _Progress:
    """Users done, rate and ETA in the task log, at a steady interval."""

    def __init__(self, log: Any, interval: float, total: int | None, start: int) -> None:
        self.log, self.interval, self.total = log, interval, total
        self.done = 0
        self.start = start
        self.started = self.last = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.log.info("Progress: %s", self.line(now))

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        text = f"{self.done:,} users settled this try ({self.start:,} before it), {rate:,.0f} users/s"
        if self.total:
            left = max(self.total - self.start - self.done, 0)
            text += f", {left:,} left, ETA {left / rate:,.0f} s" if rate else ""
        return text

    def finish(self) -> None:
        self.log.info("Finished: %s", self.line(time.monotonic()))
