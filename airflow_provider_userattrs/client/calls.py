"""What the HTTP core moves around: a user's validated values (:class:`Entry`) and one request (:class:`Call`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_userattrs.results import AttributeResult, UserId

Outcomes = list[tuple[int, AttributeResult]]
"""What a call settled: ``(entry.ref, outcome)`` for each attribute it carried."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One user's validated values inside a planning window.

    ``ref`` is the user's position in the window, so that the same user twice stays two results.
    """

    ref: int
    user_id: UserId
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Call:
    """One HTTP request and the entries it carries.

    ``rebuild`` makes the same call for a subset of the entries; it is set on batch calls, which the core
    splits when the vendor rejects them as a whole without saying which records were at fault.
    """

    method: str
    path: str
    body: Any
    entries: tuple[Entry, ...]
    rebuild: Callable[[Sequence[Entry]], Call] | None = None
