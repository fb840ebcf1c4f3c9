"""The provider metadata is what Airflow reads to list the provider and draw the connection forms."""

from __future__ import annotations

import contextlib
import importlib
import json
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import airflow
import jsonschema
import pytest

from airflow_provider_userattrs import compat
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
    hooks = manager.hooks
    for conn_type in CONN_TYPES:
        assert hooks[conn_type] is not None, conn_type
    if not compat.connection_form_supported():
        # Airflow 3.0 and 3.1 read the form from the hook classes instead (tested below, both paths alike).
        for name in CONN_TYPES.values():
            hook = getattr(importlib.import_module("airflow_provider_userattrs.hooks"), name)
            assert {"get_connection_form_widgets", "get_ui_field_behaviour"} <= set(vars(hook))
        return
    widgets = manager.connection_form_widgets
    assert "extra__fyno__workspace_id" in widgets
    assert manager.field_behaviours["usercom"]["relabeling"]["password"].startswith("API key")


@pytest.mark.slow
def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "airflow-provider-userattrs" in out


@pytest.mark.skipif(not compat.ui_supported(), reason=f"the UI plugin needs Airflow {compat.UI_MIN_AIRFLOW}")
def test_the_ui_plugin_is_declared_and_importable():
    plugins = get_provider_info()["plugins"]
    assert [p["name"] for p in plugins] == ["userattrs"]
    module, _, name = plugins[0]["plugin-class"].rpartition(".")
    plugin = getattr(importlib.import_module(module), name)
    assert plugin.name == "userattrs"
    assert plugin.fastapi_apps[0]["url_prefix"] == "/userattrs"
    assert {v["destination"] for v in plugin.external_views} == {"nav", "task_instance"}


# -- the two ways Airflow reads the connection form ----------------------------------------------------------------


@contextlib.contextmanager
def wtforms_stand_ins():
    """The modules a hook's form widgets import, replaced by the stand-ins Airflow's API server uses (3.1 and
    later do this themselves while they read the hooks); each field then carries its ``Param``."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as Meta

    wtforms = types.ModuleType("wtforms")
    wtforms.StringField, wtforms.IntegerField = Meta.MockStringField, Meta.MockIntegerField  # type: ignore[attr-defined]
    wtforms.BooleanField, wtforms.PasswordField = Meta.MockBooleanField, Meta.MockPasswordField  # type: ignore[attr-defined]
    validators = types.ModuleType("wtforms.validators")
    validators.Optional, validators.any_of = Meta.MockOptional, Meta.MockEnum  # type: ignore[attr-defined]
    babel = types.ModuleType("flask_babel")
    babel.lazy_gettext = str  # type: ignore[attr-defined]
    fab, widgets = types.ModuleType("flask_appbuilder"), types.ModuleType("flask_appbuilder.fieldwidgets")
    widgets.BS3TextFieldWidget = Meta.MockAnyWidget  # type: ignore[attr-defined]
    modules = {
        "wtforms": wtforms,
        "wtforms.validators": validators,
        "flask_babel": babel,
        "flask_appbuilder": fab,
        "flask_appbuilder.fieldwidgets": widgets,
    }
    with mock.patch.dict(sys.modules, modules):
        yield


def field_view(dumped: dict) -> dict:
    """What a person sees of one form field, from the API's JSON of it (both paths give this JSON)."""
    schema = dumped["schema"]
    kinds = [t for t in schema["type"] if t != "null"]
    return {
        "label": schema.get("title"),
        "description": dumped.get("description"),
        "kind": kinds,
        "enum": schema.get("enum"),
        "value": dumped.get("value"),
    }


def metadata_fields(conn_type: str) -> dict[str, dict]:
    """The fields Airflow 3.2+ draws from ``conn-fields``, in the API's JSON (``ProvidersManager._to_api_format``)."""
    conn = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type)
    return {
        name: {
            "value": spec["schema"].get("default"),
            "schema": {**spec["schema"], "title": spec["label"]},
            "description": spec["description"],
        }
        for name, spec in conn["conn-fields"].items()
    }


@pytest.mark.parametrize("conn_type", sorted(CONN_TYPES))
def test_both_form_paths_give_the_same_fields(conn_type):
    hook = getattr(importlib.import_module("airflow_provider_userattrs.hooks"), CONN_TYPES[conn_type])
    with wtforms_stand_ins():
        widgets = hook.get_connection_form_widgets()
    from_hook = {name: field_view(field.param.dump()) for name, field in widgets.items()}
    from_metadata = {name: field_view(dumped) for name, dumped in metadata_fields(conn_type).items()}
    assert list(from_hook) == list(from_metadata)
    for name, view in from_metadata.items():
        if view["kind"] == ["number"]:  # WTForms has no number field: the hook path shows it as text
            view = {**view, "kind": ["string"], "value": None if view["value"] is None else str(view["value"])}
        assert from_hook[name] == view, name
    behaviour = hook.get_ui_field_behaviour()
    declared = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type)
    declared = declared["ui-field-behaviour"]
    assert behaviour == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


API_FORM = """
import json, sys
from importlib.util import find_spec
has_wtforms = find_spec("wtforms") is not None  # before the reader puts stand-ins in sys.modules
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
fyno = meta["fyno"]
print(json.dumps({
    "wtforms": has_wtforms,
    "extra": fyno.extra_fields,
    "password": fyno.standard_fields.password.title if fyno.standard_fields else None,
}, default=str))
"""


def test_the_api_server_draws_the_vendor_fields(airflow_db):
    # What the UI's connection form gets, in a process of its own (Airflow 3.1's reader replaces missing form
    # modules in sys.modules for good).
    out = subprocess.run([sys.executable, "-c", API_FORM], capture_output=True, text=True, check=True).stdout
    form = json.loads(out.strip().splitlines()[-1])
    if not form["wtforms"] and not compat.connection_form_supported() and compat.AIRFLOW_VERSION.minor == 0:
        # Airflow 3.0 reads the hook's form only with WTForms installed (the FAB provider).
        assert form["extra"] is None
        return
    assert form["password"] == "API key (Bearer)"
    assert form["extra"]["workspace_id"]["schema"]["title"] == "Workspace ID"
    assert form["extra"]["version"]["schema"]["enum"] == ["live", "test"]
    assert form["extra"]["version"]["value"] == "live"


def test_dx_s_form_shows_dx_s_published_quota_and_an_emptied_field_declares_none():
    """Issue 24: a new DX connection declares DX's 1,000 a minute without its user reading DX's docs; a user on
    another plan empties the field (or sets 0) to declare none."""
    from airflow_provider_userattrs.client import vendor_api
    from airflow_provider_userattrs.config import parse_settings

    forms = {c["connection-type"]: c["conn-fields"] for c in get_provider_info()["connection-types"]}
    dx = forms["dx"]
    published = vendor_api("dx").published_quota
    assert (dx["quota_requests"]["schema"]["default"], dx["quota_window_seconds"]["schema"]["default"]) == published
    assert "default" not in forms["altatech"]["quota_requests"]["schema"]  # AltaTech announces its budget
    assert parse_settings({"quota_requests": "", "quota_window_seconds": ""}, where="dx").quota_requests == 0
    assert parse_settings({}, where="dx").quota_requests is None  # not set: the vendor's published quota
