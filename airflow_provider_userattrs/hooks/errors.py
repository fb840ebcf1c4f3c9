"""The provider's exceptions, importable from here as before; they live in :mod:`airflow_provider_userattrs.errors`."""

from __future__ import annotations

from airflow_provider_userattrs.errors import (
    CallRejected,
    ConnectionConfigError,
    TransientVendorError,
    UserAttrsError,
    VendorAuthError,
    VendorResponseError,
)

__all__ = [
    "CallRejected",
    "ConnectionConfigError",
    "TransientVendorError",
    "UserAttrsError",
    "VendorAuthError",
    "VendorResponseError",
]
