"""Where a sync keeps what must outlive the worker: failure files and the resume checkpoint.

Failure files go through Airflow's ``ObjectStoragePath`` (local by default, any fsspec URL such as
``s3://bucket/prefix`` by configuration), so that they can be replayed from any worker. The checkpoint
goes to Airflow 3.3's task state store: it is scoped to exactly (DAG run, task, map index), survives
task retries, lives in the metadata database rather than on a worker's disk, and needs no set-up. Where
the store is not available (an older runtime), an object-storage checkpoint under the same key is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from airflow.sdk import ObjectStoragePath

FAILURE_PATH_ENV = "USERATTRS_FAILURE_PATH"
CHECKPOINT_KEY = "userattrs_checkpoint"


def default_failure_root() -> str:
    """``$USERATTRS_FAILURE_PATH``, else ``$AIRFLOW_HOME/userattrs/failures``."""
    configured = os.environ.get(FAILURE_PATH_ENV)
    if configured:
        return configured
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.join(home, 'userattrs', 'failures')}"


def task_folder(root: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> ObjectStoragePath:
    """One folder per task instance: ``<root>/<dag>/<run>/<task>[/map-<i>]``."""
    safe_run = run_id.replace(":", "_").replace("+", "_")
    path = ObjectStoragePath(root) / dag_id / safe_run / task_id
    return path / f"map-{map_index}" if map_index >= 0 else path


def write_lines(path: ObjectStoragePath, lines: Iterable[dict[str, Any]]) -> int:
    """Write JSON lines in one go (the file exists whole or not at all for object stores)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as handle:
        for line in lines:
            handle.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_text_atomically(path: ObjectStoragePath, text: str) -> None:
    """Write beside, then rename: a reader sees the old document or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f"{path.name}.tmp"
    temporary.write_text(text)
    temporary.rename(path)


def read_lines(path: ObjectStoragePath | str) -> Iterator[dict[str, Any]]:
    """Stream the lines of a JSON Lines file; a torn last line (a killed writer) is skipped."""
    source = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(path)
    with source.open("r") as handle:
        for raw in handle:
            raw = raw.strip()
            if not raw:
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                continue


def concatenate(target: ObjectStoragePath, parts: Iterable[str]) -> int:
    """Stream the lines of ``parts`` into ``target``: the one failure file a person reads."""
    return write_lines(target, (line for part in parts for line in read_lines(part)))


class ReplayLedger:
    """What replays of one failure file delivered, so that a second replay sends nothing again.

    Kept beside the failure file (``<file>.delivered/*.jsonl``), one part per replayed chunk: object stores
    cannot append, and a part is whole or absent.
    """

    def __init__(self, failure_file: str) -> None:
        source = ObjectStoragePath(failure_file)
        self.folder = source.parent / f"{source.name}.delivered"

    def delivered(self) -> set[tuple[str, str]]:
        if not self.folder.exists():
            return set()
        return {
            (ledger_key(line.get("user_id")), str(line.get("attribute")))
            for part in sorted(self.folder.iterdir(), key=str)
            for line in read_lines(part)
        }

    def record(self, keys: Iterable[dict[str, Any]], name: str) -> None:
        write_lines(self.folder / f"{name}.jsonl", keys)


def ledger_key(user_id: Any) -> str:
    # Ids come back from JSON: 42 and "42" are the same User.com user.
    return str(user_id)


class CheckpointStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


class TaskStateCheckpoint:
    """The checkpoint in Airflow's task state store (``context["task_state_store"]``)."""

    def __init__(self, accessor: Any) -> None:
        self._accessor = accessor

    def load(self) -> dict[str, Any] | None:
        value = self._accessor.get(CHECKPOINT_KEY)
        return value if isinstance(value, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        self._accessor.set(CHECKPOINT_KEY, state)

    def clear(self) -> None:
        self._accessor.delete(CHECKPOINT_KEY)


class ObjectStorageCheckpoint:
    """The checkpoint as a JSON file in the task's failure folder (for runtimes without a state store)."""

    def __init__(self, folder: ObjectStoragePath) -> None:
        self._path = folder / "checkpoint.json"

    def load(self) -> dict[str, Any] | None:
        if not self._path.exists():
            return None
        try:
            value = json.loads(self._path.read_text())
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        write_text_atomically(self._path, json.dumps(state))

    def clear(self) -> None:
        if self._path.exists():
            self._path.unlink()


def checkpoint_store(context: Any, folder: ObjectStoragePath) -> CheckpointStore:
    accessor = context.get("task_state_store") if hasattr(context, "get") else None
    return TaskStateCheckpoint(accessor) if accessor is not None else ObjectStorageCheckpoint(folder)
