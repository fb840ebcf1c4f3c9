"""Moved to :mod:`airflow_provider_userattrs.sync.storage` (failure files) and
:mod:`airflow_provider_userattrs.sync.checkpoint` (the checkpoint); kept importable from here."""

from airflow_provider_userattrs.sync.checkpoint import (
    CHECKPOINT_KEY,
    CheckpointStore,
    ObjectStorageCheckpoint,
    TaskStateCheckpoint,
    checkpoint_store,
)
from airflow_provider_userattrs.sync.storage import (
    FAILURE_PATH_ENV,
    ReplayLedger,
    concatenate,
    default_failure_root,
    ledger_key,
    read_lines,
    task_folder,
    write_lines,
    write_text_atomically,
)

__all__ = [
    "CHECKPOINT_KEY",
    "FAILURE_PATH_ENV",
    "CheckpointStore",
    "ObjectStorageCheckpoint",
    "ReplayLedger",
    "TaskStateCheckpoint",
    "checkpoint_store",
    "concatenate",
    "default_failure_root",
    "ledger_key",
    "read_lines",
    "task_folder",
    "write_lines",
    "write_text_atomically",
]
