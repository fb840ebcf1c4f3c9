"""Airflow provider that syncs user attributes from a warehouse into SaaS user-profile APIs."""

from __future__ import annotations

__version__ = "0.1.0"
