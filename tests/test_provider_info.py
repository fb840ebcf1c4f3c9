"""The provider metadata is what Airflow reads to list the provider and draw the connection forms."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_userattrs.get_provider_info import get_provider_info

SCHEMA = Path(airflow.__file__).parent / "provider_info.schema.json"
CONN_TYPES = {"altatech": "AltaTechHook", "fyno": "FynoHook", "dx": "DXHook", "usercom": "UserComHook"}


def test_provider_info_is_valid_against_airflows_schema():
    jsonschema.validate(get_provider_info(), json.loads(SCHEMA.read_text()))


def test_every_connection_type_maps_to_its_hook():
    info = get_provider_info()
    by_type = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(by_type) == set(CONN_TYPES)
    for conn_type, cls_name in CONN_TYPES.items():
        module, _, name = by_type[conn_type]["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert name == cls_name and hook.conn_type == conn_type
        assert hook.default_conn_name == f"{conn_type}_default"


def test_connection_forms_relabel_hide_and_add_vendor_fields():
    by_type = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    for conn in by_type.values():
        behaviour = conn["ui-field-behaviour"]
        assert {"login", "schema", "port"} <= set(behaviour["hidden-fields"])
        assert behaviour["relabeling"]["host"] == "API base URL"
        assert behaviour["placeholders"]["host"].startswith("https://")
    assert by_type["fyno"]["conn-fields"]["version"]["schema"]["enum"] == ["live", "test"]
    assert "workspace_id" in by_type["fyno"]["conn-fields"]
    assert "workspace_id" not in by_type["dx"]["conn-fields"]
    assert "mass_update_chunk_size" in by_type["usercom"]["conn-fields"]


def test_providers_manager_loads_the_form_metadata():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-userattrs" in manager.providers
    widgets = manager.connection_form_widgets
    assert "extra__fyno__workspace_id" in widgets
    assert manager.field_behaviours["usercom"]["relabeling"]["password"].startswith("API key")
    hooks = manager.hooks
    for conn_type in CONN_TYPES:
        assert hooks[conn_type] is not None, conn_type


@pytest.mark.slow
def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "airflow-provider-userattrs" in out


def test_the_ui_plugin_is_declared_and_importable():
    plugins = get_provider_info()["plugins"]
    assert [p["name"] for p in plugins] == ["userattrs"]
    module, _, name = plugins[0]["plugin-class"].rpartition(".")
    plugin = getattr(importlib.import_module(module), name)
    assert plugin.name == "userattrs"
    assert plugin.fastapi_apps[0]["url_prefix"] == "/userattrs"
    assert {v["destination"] for v in plugin.external_views} == {"nav", "task_instance"}
