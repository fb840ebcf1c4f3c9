"""The connection form for Airflow lines that read it from the hook classes (3.0 and 3.1).

Airflow 3.2 and later read the form from the provider metadata (``conn-fields`` and ``ui-field-behaviour`` in
``get_provider_info.py``), so the API server draws it without importing the hooks, and they never call the hook
methods when the metadata declares the form. Airflow 3.0 and 3.1 know only the hook classmethods
``get_connection_form_widgets`` and ``get_ui_field_behaviour``; :class:`~.base.UserAttributesHook` gives each
vendor hook both, built here from the same metadata, so both paths show the same fields.

What the older path cannot say: WTForms fields have no number type, so a decimal setting (``read_timeout``) is a
text field there (the connection check reads ``"30"`` or ``"2.5"`` the same), and no minimum or maximum (the
connection check still refuses an out-of-range value, naming the field). Airflow 3.0 calls the widgets only
with WTForms installed (the FAB provider); 3.1 supplies stand-ins itself.
"""

from __future__ import annotations

from typing import Any


def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_userattrs.get_provider_info import get_provider_info

    return next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type)


def field_behaviour(conn_type: str) -> dict[str, Any]:
    """``get_ui_field_behaviour()``: the metadata's ``ui-field-behaviour`` with Airflow's Python key names."""
    behaviour = _connection_type(conn_type)["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }


def form_widgets(conn_type: str) -> dict[str, Any]:
    """``get_connection_form_widgets()``: one WTForms field per ``conn-fields`` entry.

    The imports are made here, when Airflow calls this: Airflow 3.1's API server replaces these names with its
    own stand-ins while it reads the form, and 3.0's needs the real ones (the FAB provider).
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, spec in _connection_type(conn_type)["conn-fields"].items():
        schema = spec.get("schema", {})
        types = schema.get("type", "string")
        kind = next(t for t in ([types] if isinstance(types, str) else types) if t != "null")
        label, description = lazy_gettext(spec["label"]), spec.get("description", "")
        if kind == "boolean":
            widgets[name] = BooleanField(label, description=description, default=schema.get("default"))
            continue
        validators: list[Any] = [Optional()]
        if schema.get("enum"):
            validators.append(any_of(list(schema["enum"])))
        default = schema.get("default")
        if kind == "integer":
            field = IntegerField
        else:  # WTForms has no number field: a decimal is text ("30.0"), read back by the connection check
            field, default = StringField, None if default is None else str(default)
        widgets[name] = field(
            label, validators=validators, description=description, default=default, widget=BS3TextFieldWidget()
        )
    return widgets
