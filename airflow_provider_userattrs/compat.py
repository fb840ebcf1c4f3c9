"""Every Airflow API difference between the supported release lines (3.0, 3.1, 3.2, 3.3), in one place.

The rest of the provider imports Airflow names that moved between releases from here and nowhere else, so
no version check is spread through the code. Each name is resolved by trying its newest location first and
falling back to the older one; a version comparison is used only where no import tells the difference.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from packaging.version import Version

log = logging.getLogger(__name__)

__all__ = [
    "AIRFLOW_VERSION",
    "ALIAS_EVENT_LISTS_MIN_AIRFLOW",
    "ASYNC_NOTIFIERS",
    "CONNECTION_FORM_MIN_AIRFLOW",
    "UI_MIN_AIRFLOW",
    "AirflowException",
    "AirflowFailException",
    "AirflowOptionalProviderFeatureException",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "DagBag",
    "ObjectStoragePath",
    "ParamValidationError",
    "Stats",
    "airflow_conf",
    "alias_event_extra",
    "auth_manager_slot",
    "connection_form_supported",
    "left_out",
    "literal",
    "mask_secret",
    "redact",
    "require",
    "reset_plugins",
    "sync_bag_to_db",
    "ui_supported",
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
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef,attr-defined,unused-ignore]

try:
    from airflow.sdk.exceptions import AirflowOptionalProviderFeatureException
except ImportError:  # Airflow < 3.2
    from airflow.exceptions import AirflowOptionalProviderFeatureException  # type: ignore[no-redef,attr-defined,unused-ignore]

try:
    from airflow.sdk.exceptions import ParamValidationError
except ImportError:  # Airflow < 3.2 (airflow.exceptions still has it on 3.2+, deprecated)
    from airflow.exceptions import ParamValidationError  # type: ignore[no-redef,attr-defined,unused-ignore]

# --- base classes ---------------------------------------------------------------------------------------------
# BaseHook joined airflow.sdk in 3.1; on 3.0 it is airflow.hooks.base.
try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined,unused-ignore]

from airflow.sdk import BaseOperator, ObjectStoragePath  # noqa: E402  (same place on every 3.x line)


def _backport_iterable_object_storage_files() -> None:
    """Airflow 3.0's ``ObjectStoragePath.open()`` returns a lineage-tracking wrapper without ``__iter__``, so
    ``for line in handle`` fails (``'_io.TextIOWrapper' object is not subscriptable``). Airflow 3.1 added the
    method; this gives 3.0 the same one. A no-op wherever the wrapper already iterates."""
    try:
        from airflow.sdk.io.path import _TrackingFileWrapper
    except ImportError:  # pragma: no cover - no wrapper, nothing to fix
        return
    if "__iter__" not in vars(_TrackingFileWrapper):
        _TrackingFileWrapper.__iter__ = lambda self: iter(self._obj)  # type: ignore[method-assign,attr-defined,unused-ignore]


_backport_iterable_object_storage_files()

# DagBag (parsing DAG files) and sync_bag_to_db (writing them to the metadata DB) moved to
# airflow.dag_processing.dagbag in 3.2; on 3.0 the latter is the method DagBag.sync_to_db.
try:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]

    try:
        from airflow.models.dagbag import sync_bag_to_db  # type: ignore[no-redef,attr-defined,unused-ignore]
    except ImportError:  # Airflow 3.0

        def sync_bag_to_db(  # type: ignore[misc,unused-ignore]
            dagbag: Any, bundle_name: str, bundle_version: str | None, *, session: Any = None, **_: Any
        ) -> None:
            """Save the DAGs of ``dagbag`` to the metadata DB (Airflow 3.0: ``DagBag.sync_to_db``)."""
            if session is None:
                dagbag.sync_to_db(bundle_name, bundle_version)
            else:
                dagbag.sync_to_db(bundle_name, bundle_version, session=session)


def auth_manager_slot() -> tuple[Any, str]:
    """Where the API server keeps its auth manager, as ``(object, attribute)`` (for tests that swap it):
    ``_AuthManagerState.instance`` from Airflow 3.2, the module attribute ``auth_manager`` before."""
    from airflow.api_fastapi import app

    state = getattr(app, "_AuthManagerState", None)
    return (state, "instance") if state is not None else (app, "auth_manager")


def reset_plugins() -> None:
    """Make Airflow load its plugins again on next use (for tests and tools that add a plugin at run time).

    Airflow 3.2 caches them in functions (``cache_clear``); 3.0 and 3.1 keep them in module-level lists that
    ``ensure_plugins_loaded()`` and the ``initialize_*`` functions fill when they are ``None``, and skip a plugin
    whose name is in ``loaded_plugins`` (so that set is emptied too)."""
    from airflow import plugins_manager

    cleared = False
    for name in ("_get_plugins", "get_fastapi_plugins", "_get_ui_plugins", "get_flask_plugins"):
        clear = getattr(getattr(plugins_manager, name, None), "cache_clear", None)
        if callable(clear):
            clear()
            cleared = True
    if cleared:
        return
    for name in (
        "plugins",
        "fastapi_apps",
        "fastapi_root_middlewares",
        "external_views",
        "react_apps",
        "flask_blueprints",
        "flask_appbuilder_views",
        "flask_appbuilder_menu_links",
        "menu_links",
    ):
        if hasattr(plugins_manager, name):
            setattr(plugins_manager, name, None)
    for name in ("import_errors", "loaded_plugins"):
        loaded = getattr(plugins_manager, name, None)
        if isinstance(loaded, (dict, set)):
            loaded.clear()


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


# --- redaction ----------------------------------------------------------------------------------------------
# A vendor's text may quote a secret (a refused token echoed back): such text passes through Airflow's masker
# before it reaches a report, a failure file or the UI. The Task SDK's masker holds what a task registered
# (``mask_secret`` above); in the API server, Airflow core's masker holds what that process loaded. Both apply.
_MASKER_MODULES = (
    ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker", "airflow.sdk._shared.secrets_masker"),
    ("airflow._shared.secrets_masker", "airflow.utils.log.secrets_masker"),
)
_redactors: list[Any] | None = None


def _find_redactors() -> list[Any]:
    """The ``redact`` of each masker the installed Airflow has (the first module of each group that has one)."""
    found: list[Any] = []
    for modules in _MASKER_MODULES:
        for module in modules:
            try:
                function = __import__(module, fromlist=["redact"]).redact
            except Exception:  # ImportError, AttributeError, or a module that fails to import here
                continue
            if callable(function) and function not in found:
                found.append(function)
            break
    return found


def redact(value: Any) -> Any:
    """``value`` with every secret Airflow's masker knows replaced by ``***``: meant for text a vendor wrote.

    ``value`` unchanged when no masker is available; never raises.
    """
    global _redactors
    if _redactors is None:
        _redactors = _find_redactors()
    for function in _redactors:
        try:
            value = function(value)
        except Exception:  # pragma: no cover - masking is best effort
            log.debug("secret redaction failed", exc_info=True)
    return value


# --- metrics ----------------------------------------------------------------------------------------------------
# Airflow's Stats (StatsD, Datadog or OpenTelemetry, as [metrics] configures it; a no-op when none is on) is the Task
# SDK's from Airflow 3.2 (airflow.sdk.observability.stats); on 3.0 and 3.1 it is airflow.stats (deprecated on 3.2).
try:
    from airflow.sdk.observability.stats import Stats
except ImportError:  # Airflow < 3.2
    from airflow.stats import Stats  # type: ignore[no-redef,attr-defined,unused-ignore]


# --- notifiers and configuration -------------------------------------------------------------------------------
# BaseNotifier is the Task SDK's (airflow.sdk) on every 3.x line; async_notify (what the triggerer awaits, e.g. for
# deadline alerts) and the context argument of __init__ came with 3.1. Airflow's configuration is the Task SDK's
# from 3.2 (airflow.sdk.configuration); on 3.0 and 3.1 it is airflow.configuration.
from airflow.sdk import BaseNotifier  # noqa: E402  (same place on every 3.x line)

ASYNC_NOTIFIERS: bool = "async_notify" in vars(BaseNotifier)
"""Whether notifiers can be awaited (``async_notify``, Airflow 3.1+); on 3.0 they are only called."""

try:
    from airflow.sdk.configuration import conf as airflow_conf
except ImportError:  # Airflow < 3.2
    from airflow.configuration import conf as airflow_conf  # type: ignore[no-redef,attr-defined,unused-ignore]

# literal() (a template field's value that is never rendered) is exported by airflow.sdk from 3.1; 3.0 has it only in
# airflow.sdk.definitions.template.
try:
    from airflow.sdk import literal
except ImportError:  # Airflow 3.0
    from airflow.sdk.definitions.template import literal  # type: ignore[no-redef,attr-defined,unused-ignore]


# --- features an older line lacks -----------------------------------------------------------------------------
# Each needs interfaces that no import tells apart cheaply (or that would load the plugin manager from inside a
# plugin), so these are the only version comparisons in the provider.

UI_MIN_AIRFLOW = Version("3.1.0")
"""The UI plugin (sync history page, "Sync report" tab, replay) needs plugin ``external_views`` (3.1) and
team-aware DAG authorization (``DagDetails.team_name``, 3.1)."""

CONNECTION_FORM_MIN_AIRFLOW = Version("3.2.0")
"""The connection form's vendor fields, labels and placeholders come from the provider metadata's
``conn-fields`` and ``ui-field-behaviour``, which Airflow reads from 3.2 (earlier lines read them from the hook
classes, and only with the FAB provider installed)."""

ALIAS_EVENT_LISTS_MIN_AIRFLOW = Version("3.1.0")
"""Airflow 3.0 hashes every value of the extra of an event attached through an asset alias: a list or dict
value makes it fail the task as it finishes (``TypeError: unhashable type: 'list'``). 3.1 keys them by JSON."""

_told: set[str] = set()


def ui_supported() -> bool:
    """Whether the running Airflow can host the UI plugin."""
    return AIRFLOW_VERSION >= UI_MIN_AIRFLOW


def connection_form_supported() -> bool:
    """Whether the running Airflow draws the vendor fields of the connection form from the provider metadata."""
    return AIRFLOW_VERSION >= CONNECTION_FORM_MIN_AIRFLOW


def alias_event_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` as the running Airflow can record it on an event attached through an asset alias.

    Unchanged from Airflow 3.1; on 3.0, list and dict values are left out (said once in the task log), since
    they would fail the task."""
    if AIRFLOW_VERSION >= ALIAS_EVENT_LISTS_MIN_AIRFLOW:
        return dict(extra)
    kept = {key: value for key, value in extra.items() if not isinstance(value, (list, tuple, dict, set))}
    dropped = sorted(set(extra) - set(kept))
    if dropped:
        left_out(
            f"list values in the extra of an asset alias event ({', '.join(dropped)})",
            ALIAS_EVENT_LISTS_MIN_AIRFLOW,
            "the event carries the other keys",
        )
    return kept


def left_out(feature: str, minimum: Version, instead: str = "") -> None:
    """Say once per process, in one log line, that ``feature`` is left out on the running Airflow."""
    if feature in _told:
        return
    _told.add(feature)
    tail = f"; {instead}" if instead else ""
    log.info(
        "airflow-provider-userattrs: %s needs Airflow %s or newer; left out on Airflow %s%s",
        feature,
        minimum,
        AIRFLOW_VERSION,
        tail,
    )


def require(feature: str, minimum: Version) -> None:
    """Refuse a feature the user asked for explicitly when the running Airflow is older than ``minimum``."""
    if minimum > AIRFLOW_VERSION:
        raise AirflowOptionalProviderFeatureException(
            f"{feature} needs Airflow {minimum} or newer; this is Airflow {AIRFLOW_VERSION}"
        )
