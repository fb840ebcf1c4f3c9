"""Where a sync keeps what must outlive the worker: failure files and the replay ledger.

Failure files go through Airflow's ``ObjectStoragePath`` (local by default, any fsspec URL such as
``s3://bucket/prefix`` by configuration), so that they can be replayed from any worker. Object stores
cannot append: every file here is written whole, once.

Every line is writable, whatever it holds: a line is UTF-8, and one whose text UTF-8 cannot hold (a lone
surrogate, ``"\\ud800"``) is written with JSON escapes instead, which read back to the same value. The
vendor's words in a line (its ``reason``) pass through Airflow's secrets masker first (:func:`redact`): a
vendor that quotes the token it refused leaves ``***`` in the file. Values are written as they are (a replay
resends them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.compat import redact

FAILURE_PATH_ENV = "USERATTRS_FAILURE_PATH"

Line = Mapping[str, Any]
"""One JSON line of a failure file or ledger, as read back (values are whatever JSON holds)."""


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


VENDOR_TEXT_KEYS = ("reason",)
"""The keys of a line that hold a vendor's words (masked); the rest is the record's own data."""
_MASKED_MEMO = 4096
"""Distinct reasons remembered while writing one file: most lines of a file share a few reasons."""


def writable_text(text: str) -> str:
    """``text`` itself when UTF-8 can hold it, else with what it cannot hold escaped (``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def encode_line(line: Line) -> bytes:
    """One JSON line in UTF-8; text UTF-8 cannot hold is written as JSON escapes (it reads back the same)."""
    text = json.dumps(line, default=str, ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(line, default=str, ensure_ascii=True).encode("ascii") + b"\n"


class _Masker:
    """Masks the vendor's words of each line, remembering the answer for a reason seen before."""

    def __init__(self) -> None:
        self.memo: dict[str, str] = {}

    def line(self, line: Line) -> Line:
        masked: dict[str, Any] | None = None
        for key in VENDOR_TEXT_KEYS:
            text = line.get(key)
            if not isinstance(text, str) or not text:
                continue
            shown = self.memo.get(text)
            if shown is None:
                shown = str(redact(text))
                if len(self.memo) < _MASKED_MEMO:
                    self.memo[text] = shown
            if shown != text:
                masked = dict(line) if masked is None else masked
                masked[key] = shown
        return line if masked is None else masked


def write_lines(path: ObjectStoragePath, lines: Iterable[Line]) -> int:
    """Write JSON lines in one go (the file exists whole or not at all for object stores).

    Always writable: every line is UTF-8 (see the module's docstring), its vendor text masked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    masker = _Masker()
    count = 0
    with path.open("wb") as handle:  # type: ignore[no-untyped-call]  # ObjectStoragePath.open is untyped
        for line in lines:
            handle.write(encode_line(masker.line(line)))
            count += 1
    return count


def write_text_atomically(path: ObjectStoragePath, text: str) -> None:
    """Write beside, then rename: a reader sees the old document or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f"{path.name}.tmp"
    temporary.write_bytes(writable_text(text).encode("utf-8"))
    temporary.rename(path)


def read_lines(path: ObjectStoragePath | str) -> Iterator[Line]:
    """Stream the lines of a JSON Lines file (UTF-8); a torn last line (a killed writer) is skipped."""
    source = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(path)
    with source.open("rb") as handle:  # type: ignore[no-untyped-call]  # ObjectStoragePath.open is untyped
        for raw in handle:
            raw = raw.strip()
            if not raw:
                continue
            try:
                value = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
                continue
            if isinstance(value, dict):
                yield value


def concatenate(target: ObjectStoragePath, parts: Iterable[str]) -> int:
    """Stream the lines of ``parts`` into ``target``: the one failure file a person reads."""
    return write_lines(target, (line for part in parts for line in read_lines(part)))


class FailureFolder:
    """The failure files of one task instance: a part file per chunk, the file a person reads at the end.

    Part files are named by try and chunk number (``try2-000004-transient.jsonl``): a chunk resent by a
    later try writes new parts beside the old ones rather than over them.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path

    def write_part(self, try_number: int, chunk: int, kind: str, lines: Iterable[Line]) -> str:
        """Write one chunk's ``kind`` (``rejected`` or ``transient``) lines; the part's path."""
        part = self.path / "parts" / f"try{try_number}-{chunk:06d}-{kind}.jsonl"
        write_lines(part, lines)
        return str(part)

    def file(self, name: str) -> ObjectStoragePath:
        """A file of this folder (``failures.jsonl``, ``dry-run-failures.jsonl``...)."""
        return self.path / name


class ReplayLedger:
    """What replays of one failure file delivered, so that a second replay sends nothing again.

    Kept beside the failure file (``<file>.delivered/*.jsonl``), one part per replayed chunk: object stores
    cannot append, and a part is whole or absent.
    """

    def __init__(self, failure_file: str) -> None:
        source = ObjectStoragePath(failure_file)
        self.folder = source.parent / f"{source.name}.delivered"

    def delivered(self) -> set[tuple[str, str]]:
        """(user, attribute) pairs some replay of this file already delivered."""
        if not self.folder.exists():
            return set()
        return {
            (ledger_key(line.get("user_id")), str(line.get("attribute")))
            for part in sorted(self.folder.iterdir(), key=str)
            for line in read_lines(part)
        }

    def record(self, keys: Iterable[Line], name: str) -> None:
        """Add the delivered ``{"user_id", "attribute"}`` pairs of one replayed chunk as part ``name``."""
        write_lines(self.folder / f"{name}.jsonl", keys)


def ledger_key(user_id: object) -> str:
    """Ids come back from JSON: 42 and "42" are the same User.com user."""
    return str(user_id)
