"""Provider metadata read by Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point).

The connection form is declared here as data (``conn-fields`` and ``ui-field-behaviour``), which Airflow
3.2+ reads without importing the hooks.
"""

from __future__ import annotations

from typing import Any

_TUNING_FIELDS: dict[str, dict[str, Any]] = {
    "concurrency": {
        "label": "Concurrency",
        "description": "Requests in flight at once (default 32).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 256},
    },
    "requests_per_second": {
        "label": "Requests per second",
        "description": "Client-side pace cap; empty = none (429 and rate-limit headers still slow the client).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to open a connection (default 5).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for an answer (default 30).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_attempts": {
        "label": "Max attempts",
        "description": "Attempts per request on 429/502/503/504 and connection errors (default 6).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20},
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turning it off logs a warning.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}


def _fields(*extra: tuple[str, dict[str, Any]], batch: str | None = None) -> dict[str, Any]:
    fields = dict(extra)
    if batch == "batch_size":
        fields["batch_size"] = {
            "label": "Batch size",
            "description": "Users per batch call (default 100; Fyno publishes no maximum).",
            "schema": {"type": ["integer", "null"], "minimum": 1},
        }
    elif batch == "mass_update_chunk_size":
        fields["mass_update_chunk_size"] = {
            "label": "Mass-update chunk size",
            "description": "Ids per mass-update call (default 1000; User.com publishes no maximum).",
            "schema": {"type": ["integer", "null"], "minimum": 1},
        }
    fields.update(_TUNING_FIELDS)
    return fields


def _connection_type(
    conn_type: str, hook: str, name: str, host_placeholder: str, token_label: str, fields: dict[str, Any]
) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": f"airflow_provider_userattrs.hooks.{hook}",
        "hook-name": name,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "API base URL", "password": token_label},
            "placeholders": {"host": host_placeholder, "password": "paste the API token"},
        },
        "conn-fields": fields,
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-userattrs",
        "name": "User Attributes (reverse ETL)",
        "description": "Sync user attributes from a warehouse into AltaTech, Fyno, DX and User.com.",
        "versions": ["0.1.0"],
        "integrations": [
            {"integration-name": "AltaTech", "external-doc-url": "https://altatech.ai", "tags": ["service"]},
            {"integration-name": "Fyno", "external-doc-url": "https://docs.fyno.io", "tags": ["service"]},
            {"integration-name": "DX", "external-doc-url": "https://docs.getdx.com", "tags": ["service"]},
            {"integration-name": "User.com", "external-doc-url": "https://user.com", "tags": ["service"]},
        ],
        "hooks": [
            {
                "integration-name": name,
                "python-modules": [f"airflow_provider_userattrs.hooks.{module}"],
            }
            for name, module in (("AltaTech", "altatech"), ("Fyno", "fyno"), ("DX", "dx"), ("User.com", "usercom"))
        ],
        "operators": [
            {
                "integration-name": "User.com",
                "python-modules": [
                    "airflow_provider_userattrs.operators.update",
                    "airflow_provider_userattrs.operators.mass_update",
                ],
            }
        ],
        "plugins": [{"name": "userattrs", "plugin-class": "airflow_provider_userattrs.ui.plugin.UserAttrsPlugin"}],
        "connection-types": [
            _connection_type(
                "altatech",
                "altatech.AltaTechHook",
                "AltaTech",
                "https://altatech.ai",
                "API key (Bearer)",
                _fields(),
            ),
            _connection_type(
                "fyno",
                "fyno.FynoHook",
                "Fyno",
                "https://api.fyno.io",
                "API key (Bearer)",
                _fields(
                    (
                        "workspace_id",
                        {
                            "label": "Workspace ID",
                            "description": "WSID from the API Keys page of your Fyno account.",
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ),
                    (
                        "version",
                        {
                            "label": "Version",
                            "description": "live (default) or test.",
                            "schema": {"type": "string", "enum": ["live", "test"], "default": "live"},
                        },
                    ),
                    batch="batch_size",
                ),
            ),
            _connection_type("dx", "dx.DXHook", "DX", "https://api.getdx.com", "API token (users:write)", _fields()),
            _connection_type(
                "usercom",
                "usercom.UserComHook",
                "User.com",
                "https://<app_subdomain>.user.com",
                "API key (64 characters)",
                _fields(batch="mass_update_chunk_size"),
            ),
        ],
    }
