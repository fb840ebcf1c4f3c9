"""Moved to :mod:`airflow_provider_userattrs.sync.incremental`; kept importable from here."""

from airflow_provider_userattrs.sync.incremental import (
    STATE_TABLE,
    IncrementalState,
    ObjectState,
    Segment,
    StateUpdate,
    WarehouseState,
    value_text,
)

__all__ = ["STATE_TABLE", "IncrementalState", "ObjectState", "Segment", "StateUpdate", "WarehouseState", "value_text"]
