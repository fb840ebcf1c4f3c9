"""Where a SQL source continues, and where the warehouse-sync DAG splits it: by user id, never by position.

**The rule.** The user's query is wrapped as a subquery, ordered by ``user_id_field`` (NULL ids first, the
same on every engine), and a retried try continues from the last user id an earlier try settled
(``WHERE id >= last``), skipping the rows with that very id it already settled. The user's own ``ORDER BY``
is optional: a query written the natural way, on a table whose physical order changes between tries
(``CLUSTER``, ``VACUUM FULL``, updates moving rows), neither skips nor resends anyone. Skipping "the first N
rows" did both (tests/reliability/test_keyset_resume.py).

Duplicates of one user id are kept, reported as before, and may straddle a chunk boundary; the engine may
return them in any order on the next try. That is why the point remembers *which* rows at the last id are
settled (a digest of each, ``at_key``), not only the id or their number.

The DAG's planning (:func:`plan_chunks`) cuts the same ordering into ranges ``low <= id < high`` (NULL ids
in the first): one chunk each, whose own resume is the rule above.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_userattrs.sync.sql import Binder, SqlDialect, Statement

Key = str | int | float | bool | None
"""A user id as the checkpoint (JSON) keeps it and binds it again."""


def key_of(value: object) -> Key:
    """``value`` as a :data:`Key`: JSON's own types as they are, numbers as numbers, the rest as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@dataclass(frozen=True)
class ResumePoint:
    """What earlier tries settled of a source, and so where it continues."""

    offset: int = 0
    """Source rows settled: the positions of the next rows (progress, failure lines)."""
    key: Key = None
    """The last settled user id; None: no row with a non-NULL id settled yet."""
    at_key: tuple[str, ...] = ()
    """Digests (:func:`row_digest`) of the rows settled whose id is ``key`` (NULL ids while ``key`` is None)."""
    keyed: bool = True
    """False for a checkpoint written before resume by key (provider 0.x): its SQL source resumes by
    position, as it was written to."""

    def after(self, rows: Sequence[tuple[object, object]]) -> ResumePoint:
        """The point once the next ``rows`` (a chunk's (user id, source row), in source order) are settled too.

        Only the rows at the last id are fingerprinted: a few per chunk, not one per user.
        """
        if not rows:
            return self
        last = key_of(rows[-1][0])
        run: list[str] = []
        for value, row in reversed(rows):
            if key_of(value) != last:
                break
            run.append(row_digest(row))
        at_key = (*self.at_key, *reversed(run)) if len(run) == len(rows) and last == self.key else tuple(reversed(run))
        return dataclasses.replace(self, offset=self.offset + len(rows), key=last, at_key=at_key)


def row_digest(row: object) -> str:
    """A short fingerprint of a source row, to tell apart rows of one user id (duplicates)."""
    text = json.dumps(sorted(row.items()) if isinstance(row, Mapping) else row, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def ordered_statement(
    dialect: SqlDialect, placeholder: str, sql: str, parameters: Any, key_column: str, point: ResumePoint
) -> Statement:
    """The user's query in id order, from ``point`` on (the rows at its id included: see :func:`skip_settled`)."""
    binder = Binder(dialect, placeholder, parameters)
    key = f"src.{dialect.quoted(key_column)}"
    where = f" WHERE {key} >= {binder.bind(point.key)}" if point.key is not None else ""
    return binder.statement(f"SELECT * FROM {binder.source(sql)} src{where} {_order(key)}")


def _order(key: str) -> str:
    # NULLs first on every engine (PostgreSQL and Snowflake put them last by default, MySQL and SQLite first).
    return f"ORDER BY CASE WHEN {key} IS NULL THEN 0 ELSE 1 END, {key}"


def skip_settled(rows: Iterable[Mapping[str, Any]], key_column: str, point: ResumePoint) -> Iterator[Mapping[str, Any]]:
    """``rows`` of :func:`ordered_statement` without those at ``point.key`` an earlier try settled."""
    settled = Counter(point.at_key)
    rows = iter(rows)
    for row in rows:
        if key_of(row.get(key_column)) != point.key:
            yield row
            break  # past the rows at the point's id: nothing more to skip
        digest = row_digest(row)
        if settled[digest]:
            settled[digest] -= 1
            continue
        yield row
    yield from rows


@dataclass(frozen=True)
class KeyRange:
    """One chunk of a plan: ids ``low <= id < high`` (``low`` None: from the NULL ids on; ``high`` None: to the end)."""

    low: Key
    high: Key
    first: bool


def key_ranges(keys: Iterable[object], chunk_size: int) -> list[KeyRange]:
    """Ranges of about ``chunk_size`` rows over ``keys`` in :func:`ordered_statement`'s order.

    A range never splits one id (its duplicates stay in one chunk), so a chunk may hold a few more rows.
    """
    bounds: list[Key] = []
    count = 0
    previous: Key = None
    for index, value in enumerate(keys):
        key = key_of(value)
        if index == 0:
            bounds.append(key)
        elif count >= chunk_size and key != previous and key is not None:
            bounds.append(key)
            count = 0
        count += 1
        previous = key
    return [
        KeyRange(low if index else None, bounds[index + 1] if index + 1 < len(bounds) else None, index == 0)
        for index, low in enumerate(bounds)
    ]


def range_statement(
    dialect: SqlDialect, placeholder: str, sql: str, parameters: Any, key_column: str, chunk: KeyRange
) -> Statement:
    """The rows of one planned chunk: the user's query filtered to the chunk's ids (in no particular order:
    the operator orders it by id itself)."""
    binder = Binder(dialect, placeholder, parameters)
    key = f"src.{dialect.quoted(key_column)}"
    conditions = []
    if chunk.low is not None:
        conditions.append(f"{key} >= {binder.bind(chunk.low)}")
    if chunk.high is not None:
        conditions.append(f"{key} < {binder.bind(chunk.high)}")
    where = " AND ".join(conditions)
    if chunk.first:  # the NULL ids go to the first chunk, which reports them
        where = f"{key} IS NULL OR ({where})" if where else ""
    text = f"SELECT * FROM {binder.source(sql)} src" + (f" WHERE {where}" if where else "")
    return binder.statement(text)


def keys_statement(dialect: SqlDialect, placeholder: str, sql: str, parameters: Any, key_column: str) -> Statement:
    """Only the ids of the user's query, in the rule's order: what planning reads (never the rows)."""
    binder = Binder(dialect, placeholder, parameters)
    key = f"src.{dialect.quoted(key_column)}"
    return binder.statement(f"SELECT {key} AS userattrs_key FROM {binder.source(sql)} src {_order(key)}")
