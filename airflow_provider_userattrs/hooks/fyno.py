"""The Fyno hook: a ``fyno`` connection turned into a client for a Fyno workspace's profile properties.

The vendor's rules live in :mod:`airflow_provider_userattrs.client.vendors.fyno`.
"""

from __future__ import annotations

from airflow_provider_userattrs.client.vendors.fyno import FYNO
from airflow_provider_userattrs.hooks.base import UserAttributesHook


class FynoHook(UserAttributesHook):
    """Sets user attributes through a Fyno workspace's profile properties.

    Extras ``workspace_id`` (required) and ``version`` (``live``/``test``).
    """

    api = FYNO
