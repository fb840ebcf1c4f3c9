"""Provider metadata read by Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point).

The connection form is declared here as data (``conn-fields`` and ``ui-field-behaviour``), which Airflow
3.2+ reads without importing the hooks (``ProvidersManager._load_ui_metadata``; it then skips the hook methods).
Airflow 3.0 and 3.1 read the form only from the hook classes' ``get_connection_form_widgets`` and
``get_ui_field_behaviour``, which every vendor hook has, built from this same data (``hooks/forms.py``). Its
extra fields are generated from :class:`HookSettings`, where each default and description is written once.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_userattrs import __version__
from airflow_provider_userattrs.config import form_fields

AIRFLOW_REQUIREMENT = "apache-airflow>=3.0.6"
"""The Airflow releases the provider supports (every 3.x line from 3.0.6), as pyproject.toml declares it
(tests/test_compat.py keeps the two equal). README's "Supported Airflow versions" says what each line gates."""

VENDORS = (("AltaTech", "altatech"), ("Fyno", "fyno"), ("DX", "dx"), ("User.com", "usercom"))
OPERATOR_MODULES = [
    "airflow_provider_userattrs.operators.update",
    "airflow_provider_userattrs.operators.mass_update",
]
HOW_TO_GUIDES = [
    "/docs/connections.md",
    "/docs/operators.md",
    "/docs/incremental.md",
    "/docs/delivery-guarantees.md",
    "/docs/assets-and-lineage.md",
    "/docs/sandbox.md",
    "/docs/ui.md",
]
"""The docs pages, relative to the repository root (as Airflow's providers give theirs from their docs root)."""


def _integration(name: str, doc_url: str) -> dict[str, Any]:
    return {
        "integration-name": name,
        "external-doc-url": doc_url,
        "how-to-guide": HOW_TO_GUIDES,
        "tags": ["service"],
    }


DX_PUBLISHED_QUOTA = {"quota_requests": 1000, "quota_window_seconds": 60.0}
"""What DX's form shows: DX's published quota (``client/vendors/dx.py``, ``published_quota``; a test keeps them
equal). Written here, not imported, so that reading the provider metadata imports no vendor client."""


def _connection_type(
    conn_type: str,
    hook: str,
    name: str,
    host_placeholder: str,
    token_label: str,
    defaults: dict[str, Any] | None = None,
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
        "conn-fields": form_fields(conn_type, defaults),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-userattrs",
        "name": "User Attributes (reverse ETL)",
        "description": "Sync user attributes from a warehouse into AltaTech, Fyno, DX and User.com.",
        "versions": [__version__],
        # As provider.yaml declares them: what the package needs from Airflow (the resolver enforces it).
        "dependencies": [AIRFLOW_REQUIREMENT, "apache-airflow-providers-common-sql>=1.20"],
        # No "logo" keys: the package ships no vendor logos, and the key is optional.
        "integrations": [
            _integration("AltaTech", "https://altatech.ai"),
            _integration("Fyno", "https://docs.fyno.io"),
            _integration("DX", "https://docs.getdx.com"),
            _integration("User.com", "https://user.com"),
        ],
        "hooks": [
            {
                "integration-name": name,
                "python-modules": [f"airflow_provider_userattrs.hooks.{module}"],
            }
            for name, module in VENDORS
        ],
        # Both operators serve every vendor: each integration lists them, as Airflow's providers list theirs.
        "operators": [{"integration-name": name, "python-modules": OPERATOR_MODULES} for name, _ in VENDORS],
        "asset-uris": [
            {
                "schemes": ["userattrs"],
                "handler": "airflow_provider_userattrs.assets.sanitize_uri",
                "factory": "airflow_provider_userattrs.assets.create_asset",
                "to_openlineage_converter": "airflow_provider_userattrs.assets.convert_asset_to_openlineage",
            }
        ],
        "plugins": [{"name": "userattrs", "plugin-class": "airflow_provider_userattrs.ui.plugin.UserAttrsPlugin"}],
        "connection-types": [
            _connection_type(
                "altatech", "altatech.AltaTechHook", "AltaTech", "https://altatech.ai", "API key (Bearer)"
            ),
            _connection_type("fyno", "fyno.FynoHook", "Fyno", "https://api.fyno.io", "API key (Bearer)"),
            _connection_type(
                "dx", "dx.DXHook", "DX", "https://api.getdx.com", "API token (users:write)", DX_PUBLISHED_QUOTA
            ),
            _connection_type(
                "usercom",
                "usercom.UserComHook",
                "User.com",
                "https://<app_subdomain>.user.com",
                "API key (64 characters)",
            ),
        ],
    }
