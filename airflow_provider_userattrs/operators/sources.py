"""Moved to :mod:`airflow_provider_userattrs.sync.sources`; kept importable from here."""

from airflow_provider_userattrs.sync.sources import (
    Item,
    from_records,
    from_user_ids,
    json_key,
    replay_items,
    stream_sql,
)

__all__ = ["Item", "from_records", "from_user_ids", "json_key", "replay_items", "stream_sql"]
