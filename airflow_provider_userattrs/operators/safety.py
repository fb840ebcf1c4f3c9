"""The data-safety parameters of both operators, read as given or as a template rendered them:
``null_values`` (``sync/nulls.py``) and ``max_removals`` (``sync/incremental.py``, :class:`RemovalLimit`).

A value that cannot be read fails the task at once, without retry (:class:`AirflowFailException`, naming the
parameter and what it accepts): a retry would render the same value. A value given as it is (not a template)
is checked when the DAG is parsed.
"""

from __future__ import annotations

from airflow_provider_userattrs.compat import AirflowFailException
from airflow_provider_userattrs.sync.incremental import RemovalLimit
from airflow_provider_userattrs.sync.nulls import NULL_VALUES


def checked_now(value: object) -> bool:
    """Whether ``value`` is the parameter itself, to check when the DAG is parsed; a template (or an XComArg)
    is checked once rendered, in ``execute``."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return value is None or isinstance(value, int | float)


def null_values_mode(value: object) -> str:
    """``null_values`` as one of :data:`NULL_VALUES` (case and surrounding blanks do not matter).

    :raises AirflowFailException: any other value.
    """
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in NULL_VALUES:
        choices = " or ".join(repr(choice) for choice in NULL_VALUES)
        raise AirflowFailException(f"null_values must be {choices}, got {value!r}")
    return str(mode)


def removal_limit(value: object, *, incremental: bool) -> RemovalLimit | None:
    """``max_removals`` read (:meth:`RemovalLimit.parse`): None for no limit.

    :raises AirflowFailException: not a count, a ratio or None; or a limit on a sync that is not incremental
        (it would guard nothing: only an incremental sync knows what it delivered, so what it removes).
    """
    try:
        limit = RemovalLimit.parse(value)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    if limit is not None and not incremental:
        raise AirflowFailException(
            f"max_removals={value!r} needs incremental=True: a full sync keeps no state to count removals by "
            "(null_values='skip' keeps a full sync from clearing attributes on NULLs)"
        )
    return limit
