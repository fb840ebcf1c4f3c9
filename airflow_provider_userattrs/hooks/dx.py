"""The DX hook: a ``dx`` connection turned into a client for DX's ``users.attributes.update``.

The vendor's rules live in :mod:`airflow_provider_userattrs.client.vendors.dx`.
"""

from __future__ import annotations

from airflow_provider_userattrs.client.vendors.dx import DX
from airflow_provider_userattrs.hooks.base import UserAttributesHook


class DXHook(UserAttributesHook):
    """Sets user attributes through DX's ``users.attributes.update``.

    The token needs the ``users:write`` scope.
    """

    api = DX
