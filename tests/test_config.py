"""Each connection setting is defined once (``HookSettings``); README's table and the form follow it."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_userattrs.config import SETTING_FIELDS, settings_markdown
from airflow_provider_userattrs.get_provider_info import get_provider_info

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_setting_with_its_default():
    text = README.read_text()
    start, end = text.index("<!-- settings:start -->"), text.index("<!-- settings:end -->")
    assert text[start:end].split("\n", 1)[1].strip() == settings_markdown(), (
        "README's connection extras table is out of date: paste settings_markdown() between the markers"
    )


def test_every_setting_is_on_the_form_of_the_vendors_it_applies_to():
    forms = {c["connection-type"]: c["conn-fields"] for c in get_provider_info()["connection-types"]}
    for spec in SETTING_FIELDS:
        vendors = spec.metadata.get("vendors") or tuple(forms)
        for vendor, fields in forms.items():
            assert (spec.name in fields) == (vendor in vendors), (spec.name, vendor)
    assert forms["dx"]["concurrency"]["schema"]["default"] == 32
