"""The AltaTech hook: a ``altatech`` connection turned into a client for AltaTech's ``POST /v1/property/update``.

The vendor's rules live in :mod:`airflow_provider_userattrs.client.vendors.altatech`.
"""

from __future__ import annotations

from airflow_provider_userattrs.client.vendors.altatech import ALTATECH
from airflow_provider_userattrs.hooks.base import UserAttributesHook


class AltaTechHook(UserAttributesHook):
    """Sets user attributes through AltaTech's ``POST /v1/property/update``.

    A key belongs to one agent and user data is kept per agent: one connection is one user namespace.
    """

    api = ALTATECH
