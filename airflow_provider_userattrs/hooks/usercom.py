"""The User.com hook: a ``usercom`` connection turned into a client for a User.com app's custom attributes.

The vendor's rules live in :mod:`airflow_provider_userattrs.client.vendors.usercom`.
"""

from __future__ import annotations

from airflow_provider_userattrs.client.vendors.usercom import USERCOM
from airflow_provider_userattrs.hooks.base import UserAttributesHook


class UserComHook(UserAttributesHook):
    """Sets user attributes through a User.com app's custom attributes.

    Host ``https://<app_subdomain>.user.com``, ``Token`` auth; the attributes must exist in the app.
    """

    api = USERCOM
