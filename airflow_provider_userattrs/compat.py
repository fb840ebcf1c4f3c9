"""Every Airflow API difference between the supported release lines (3.0, 3.1, 3.2, 3.3), in one place.

The rest of the provider imports Airflow names that moved between releases from here and nowhere else, so
no version check is spread through the code. Each name is resolved by trying its newest location first and
falling back to the older one; a version comparison is used only where no import tells the difference.
"""

from __future__ import annotations

import logging
from typing import Any

from packaging.version import Version

log = logging.getLogger(__name__)

__all__ = [
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowOptionalProviderFeatureException",
    "BaseHook",
    "BaseOperator",
    "ObjectStoragePath",
    "mask_secret",
]


def _airflow_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


#: The running Airflow's version, without pre-release or local parts (``3.1.8rc1`` -> ``3.1.8``).
AIRFLOW_VERSION: Version = _airflow_version()

# --- exceptions ---------------------------------------------------------------------------------------------
# Task SDK exceptions live in airflow.sdk.exceptions from 3.2; on 3.0 and 3.1 they are in airflow.exceptions.
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]

try:
    from airflow.sdk.exceptions import AirflowOptionalProviderFeatureException
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import AirflowOptionalProviderFeatureException  # type: ignore[no-redef]

# --- base classes ---------------------------------------------------------------------------------------------
# BaseHook joined airflow.sdk in 3.1; on 3.0 it is airflow.hooks.base.
try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

from airflow.sdk import BaseOperator, ObjectStoragePath  # noqa: E402  (same place on every 3.x line)


# --- secret masking -------------------------------------------------------------------------------------------
def _find_mask_secret() -> Any:
    for module, name in (
        ("airflow.sdk.log", "mask_secret"),
        ("airflow.sdk.execution_time.secrets_masker", "mask_secret"),
        ("airflow.sdk._shared.secrets_masker", "mask_secret"),
        ("airflow.utils.log.secrets_masker", "mask_secret"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
            return getattr(mod, name)
        except (ImportError, AttributeError):
            continue
    return None


_mask_secret = _find_mask_secret()


def mask_secret(secret: str | None, name: str | None = None) -> None:
    """Hide ``secret`` in task logs, best effort: never raises, whatever the Airflow line or context."""
    if not secret or _mask_secret is None:
        return
    try:
        _mask_secret(secret, name)
    except Exception:  # pragma: no cover - masking is best effort outside a task
        log.debug("secret masking unavailable")
