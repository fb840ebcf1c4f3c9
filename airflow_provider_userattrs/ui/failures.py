"""Failure files as the UI reads them: only under allowed roots, grouped by reason, paged.

The path comes from a report XCom, which any task could push: it is never trusted as a path. A failure file is
read only when it lies under one of the *failure roots*:

* the default root, ``$USERATTRS_FAILURE_PATH`` or ``$AIRFLOW_HOME/userattrs/failures``
  (``sync.storage.default_failure_root``), as the API server sees it;
* every root listed in the Airflow option ``[userattrs] failure_roots`` (comma-separated URLs or paths, e.g.
  ``AIRFLOW__USERATTRS__FAILURE_ROOTS="s3://bucket/userattrs,/data/failures"``): the ``failure_path`` values
  given to operators, which the API server cannot guess.

Local paths are compared after resolving symlinks and ``..``; object-store URLs must share scheme and bucket
and may not contain ``..`` segments.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from airflow_provider_userattrs.sync.storage import default_failure_root
from airflow_provider_userattrs.ui.models import ReasonGroup

ROOTS_OPTION = ("userattrs", "failure_roots")
SCAN_LIMIT = 200_000
"""Lines read to group reasons; beyond it the groups are marked partial (the download has everything)."""


class FailureFileRefused(Exception):
    """The failure file may not be read: outside the roots, missing, or not a file (message is safe to show)."""


def configured_roots() -> list[str]:
    """The default root and every root of ``[userattrs] failure_roots``."""
    from airflow.configuration import conf

    extra = conf.get(*ROOTS_OPTION, fallback="") or ""
    roots = [default_failure_root(), *(part.strip() for part in re.split(r"[,\n]", extra))]
    return [root for root in dict.fromkeys(roots) if root]


@dataclass(frozen=True)
class _Location:
    scheme: str
    netloc: str
    path: str


def _locate(url: str) -> _Location:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and url[1:3] == ":\\"):
        path = parsed.path if parsed.scheme == "file" else url
        return _Location("file", "", os.path.realpath(path))
    if ".." in parsed.path.split("/"):
        raise FailureFileRefused("the failure file's path contains '..'")
    return _Location(parsed.scheme, parsed.netloc, posixpath.normpath("/" + parsed.path.lstrip("/")))


def _inside(target: _Location, root: _Location) -> bool:
    if (target.scheme, target.netloc) != (root.scheme, root.netloc):
        return False
    if target.scheme == "file":
        return os.path.commonpath([root.path, target.path]) == root.path and target.path != root.path
    return target.path.startswith(root.path.rstrip("/") + "/")


def check_allowed(url: str, roots: list[str] | None = None) -> str:
    """``url`` itself when it lies under an allowed root, else :class:`FailureFileRefused`."""
    if not url or "\x00" in url:
        raise FailureFileRefused("the report names no failure file")
    target = _locate(url)
    for root in roots if roots is not None else configured_roots():
        try:
            if _inside(target, _locate(root)):
                return url
        except FailureFileRefused:
            continue
    raise FailureFileRefused("the failure file is outside the configured failure roots ([userattrs] failure_roots)")


def open_lines(url: str) -> Iterator[dict[str, Any]]:
    """The file's JSON lines once it is known to be allowed; missing files are refused, not raised."""
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(check_allowed(url))
    try:
        if not path.is_file():
            raise FailureFileRefused("the failure file does not exist (removed, or on storage this server cannot see)")
    except OSError as exc:
        raise FailureFileRefused(f"the failure file cannot be read ({type(exc).__name__})") from None
    return _read_lines(path)


def _read_lines(path: Any) -> Iterator[dict[str, Any]]:
    """JSON objects, one a line (UTF-8, as written); a torn or foreign line is skipped (the download has it)."""
    with path.open("rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
                continue
            if isinstance(line, dict):
                yield line


def normalized_reason(line: Mapping[str, Any]) -> str:
    """The reason with this user's own id and record position taken out, so that equal causes group together."""
    reason = str(line.get("reason") or "(no reason given)")
    user = line.get("user_id")
    if user is not None and len(str(user)) >= 3:
        reason = reason.replace(repr(user), "<user>").replace(str(user), "<user>")
    return re.sub(r"\brecord \d+\b", "record <n>", reason)


@dataclass
class _Group:
    retryable: bool
    count: int = 0
    users: set[str] = field(default_factory=set)
    attributes: dict[str, None] = field(default_factory=dict)


@dataclass
class FailureSummary:
    """Reasons grouped over the lines read, and how many lines could be replayed."""

    groups: list[ReasonGroup]
    lines: int
    retryable_lines: int
    partial: bool


def summarize(lines: Iterator[Mapping[str, Any]], scan_limit: int = SCAN_LIMIT) -> FailureSummary:
    groups: dict[tuple[str, bool], _Group] = {}
    count = retryable = 0
    partial = False
    for line in lines:
        if count >= scan_limit:
            partial = True
            break
        count += 1
        is_retryable = bool(line.get("retryable"))
        retryable += is_retryable
        group = groups.setdefault((normalized_reason(line), is_retryable), _Group(is_retryable))
        group.count += 1
        group.users.add(repr(line.get("user_id")))
        if len(group.attributes) < 8 and line.get("attribute") is not None:
            group.attributes[str(line["attribute"])] = None
    # The most users first (the unit a person reads, as the demo's summary and the alerts count), then lines.
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1].users), -kv[1].count, kv[0][0]))
    return FailureSummary(
        [
            ReasonGroup(
                reason=k[0], retryable=g.retryable, count=g.count, users=len(g.users), attributes=list(g.attributes)
            )
            for k, g in ordered
        ],
        count,
        retryable,
        partial,
    )


def page(lines: Iterator[dict[str, Any]], limit: int, offset: int) -> list[dict[str, Any]]:
    return list(itertools.islice(lines, offset, offset + limit))
