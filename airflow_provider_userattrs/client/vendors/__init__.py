"""One module per vendor, each one object satisfying :class:`~airflow_provider_userattrs.client.vendor.VendorApi`."""

from __future__ import annotations

from airflow_provider_userattrs.client.vendor import VendorApi
from airflow_provider_userattrs.client.vendors.altatech import ALTATECH
from airflow_provider_userattrs.client.vendors.dx import DX
from airflow_provider_userattrs.client.vendors.fyno import FYNO
from airflow_provider_userattrs.client.vendors.usercom import USERCOM
from airflow_provider_userattrs.errors import ConnectionConfigError

VENDORS: dict[str, VendorApi] = {api.name: api for api in (ALTATECH, FYNO, DX, USERCOM)}
"""Every vendor by its key (the Airflow connection type)."""


def vendor_api(name: str) -> VendorApi:
    """The vendor called ``name``; an unknown name is a configuration error listing the known ones."""
    try:
        return VENDORS[name]
    except KeyError:
        raise ConnectionConfigError(
            f"{name!r} is not a user-attributes vendor; expected one of {sorted(VENDORS)}"
        ) from None


__all__ = ["ALTATECH", "DX", "FYNO", "USERCOM", "VENDORS", "vendor_api"]
