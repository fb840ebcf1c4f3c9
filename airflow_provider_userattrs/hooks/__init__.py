"""One hook per vendor over one shared HTTP core (:mod:`.base`)."""

from __future__ import annotations

from typing import Any

from airflow_provider_userattrs.config import HookSettings
from airflow_provider_userattrs.errors import (
    ConnectionConfigError,
    UserAttrsError,
    VendorAuthError,
)
from airflow_provider_userattrs.hooks.altatech import AltaTechHook
from airflow_provider_userattrs.hooks.base import UserAttributesHook
from airflow_provider_userattrs.hooks.dx import DXHook
from airflow_provider_userattrs.hooks.fyno import FynoHook
from airflow_provider_userattrs.hooks.usercom import UserComHook

HOOKS_BY_CONN_TYPE: dict[str, type[UserAttributesHook]] = {
    hook.conn_type: hook for hook in (AltaTechHook, FynoHook, DXHook, UserComHook)
}


def hook_class_for(conn_type: str) -> type[UserAttributesHook]:
    try:
        return HOOKS_BY_CONN_TYPE[conn_type]
    except KeyError:
        raise ConnectionConfigError(
            f"connection type {conn_type!r} is not a user-attributes vendor; expected one of "
            f"{sorted(HOOKS_BY_CONN_TYPE)}"
        ) from None


def get_hook(conn_id: str, **hook_kwargs: Any) -> UserAttributesHook:
    """The vendor hook for ``conn_id``, chosen by the connection's type (as common.sql does for SQL)."""
    conn = UserAttributesHook.get_connection(conn_id)
    return hook_class_for(conn.conn_type or "")(conn_id, **hook_kwargs)


__all__ = [
    "HOOKS_BY_CONN_TYPE",
    "AltaTechHook",
    "ConnectionConfigError",
    "DXHook",
    "FynoHook",
    "HookSettings",
    "UserAttributesHook",
    "UserAttrsError",
    "UserComHook",
    "VendorAuthError",
    "get_hook",
    "hook_class_for",
]
