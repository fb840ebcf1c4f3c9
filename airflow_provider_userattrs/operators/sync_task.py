"""The operator as the modules of its try see it (``parameters.py``, ``sync_try.py``): its parameters, the users
its subclass provides, and the few of Airflow's task it calls.

A protocol rather than the class itself: the operator's module imports those modules, they never import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, NoReturn, Protocol

from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.sync.incremental import Segment
from airflow_provider_userattrs.sync.keyset import ResumePoint
from airflow_provider_userattrs.sync.progress import Log
from airflow_provider_userattrs.sync.sources import Item


class SyncTask(Protocol):
    """What a try reads of ``UserAttributesSyncOperator``; the parameters are documented there.

    Once rendered, ``max_failure_ratio``, ``is_dry_run`` and ``null_values`` are replaced by the values read
    (``parameters.keep_read``): the sources read ``null_values`` (``segment``).
    """

    diffs_sql_in_warehouse: ClassVar[bool]
    task_id: str
    retries: int | None
    conn_id: str
    sql: str | None
    sql_conn_id: str | None
    max_failure_ratio: float | str
    is_dry_run: bool | str
    failure_path: str | None
    replay_from: str | None
    checkpoint_every: int
    progress_interval: float
    incremental: bool
    state_key: str | None
    full_refresh: bool | str
    remove_missing: bool
    state_table: str
    deferrable: bool
    null_values: str
    max_removals: float | str | None
    results_table: str | None
    results_outcomes: str
    results_conn_id: str | None
    degraded_failure_ratio: float | str | None
    degraded_when_empty: bool
    degraded_when_postponed: bool
    degraded_after: float | str | None

    @property
    def log(self) -> Log: ...

    def get_hook(self) -> UserAttributesHook: ...

    def source_items(self, point: ResumePoint) -> Iterator[Item]: ...

    def source_size(self) -> int | None: ...

    def segment(self) -> Segment: ...

    def source_label(self) -> str: ...

    def defer(self, *, trigger: Any, method_name: str) -> NoReturn: ...
