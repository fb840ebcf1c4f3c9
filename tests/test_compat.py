"""The compatibility module and the support declarations: one place for what differs between Airflow 3.0-3.3.

These run on every line of the version matrix (scripts/matrix.sh), each checking the line it runs on.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tomllib

import airflow
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from airflow_provider_userattrs import compat
from airflow_provider_userattrs.get_provider_info import AIRFLOW_REQUIREMENT, get_provider_info
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
MATRIX_SCRIPT = (REPO_ROOT / "scripts" / "matrix.sh").read_text()
MATRIX_ROWS = [
    row.split()
    for row in re.findall(r'^\s+"(\S+\s+\d+\.\d+\.\d+\s+\S+\s+\d+\.\d+\s+\w+)"$', MATRIX_SCRIPT, re.MULTILINE)
]


def airflow_requirement() -> Requirement:
    deps = [Requirement(d) for d in PYPROJECT["project"]["dependencies"]]
    return next(d for d in deps if d.name == "apache-airflow")


# ------------------------------------------------------------------------------------------ the names it holds


def test_airflow_version_is_the_running_one():
    assert Version(airflow.__version__).release[:3] == compat.AIRFLOW_VERSION.release[:3]
    assert compat.AIRFLOW_VERSION in airflow_requirement().specifier


def test_every_name_resolves_to_what_airflow_itself_uses():
    from airflow.sdk import BaseOperator as SdkBaseOperator

    for name in compat.__all__:
        assert getattr(compat, name) is not None, name
    assert compat.BaseOperator is SdkBaseOperator
    assert issubclass(compat.AirflowFailException, compat.AirflowException)
    assert issubclass(compat.AirflowOptionalProviderFeatureException, compat.AirflowException)
    assert compat.BaseHook.get_connection is not None


def test_mask_secret_never_raises_outside_a_task():
    compat.mask_secret(None)
    compat.mask_secret("")
    compat.mask_secret("a-secret-token-of-some-length", "password")


def test_object_storage_files_iterate_by_line_on_every_line(tmp_path):
    # Airflow 3.0's tracking wrapper had no __iter__; compat gives it the one 3.1 added.
    path = compat.ObjectStoragePath(f"file://{tmp_path}/lines.jsonl")
    with path.open("w") as handle:
        handle.write('{"a": 1}\n{"b": 2}\n')
    with path.open("r") as handle:
        assert [line.strip() for line in handle] == ['{"a": 1}', '{"b": 2}']
    with path.open("rb") as handle:
        assert len(list(handle)) == 2


def test_dag_bag_parses_a_dag_folder(tmp_path):
    (tmp_path / "one.py").write_text("from airflow.sdk import DAG\nwith DAG('compat_one', schedule=None):\n    pass\n")
    bag = compat.DagBag(dag_folder=str(tmp_path))  # examples are off (AIRFLOW__CORE__LOAD_EXAMPLES)
    assert bag.import_errors == {}
    assert "compat_one" in bag.dag_ids


# ------------------------------------------------------------------------------------------------------ gates


def test_the_ui_gate_matches_the_plugin_interfaces_of_this_line():
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.plugins_manager import AirflowPlugin

    has_views = hasattr(AirflowPlugin, "external_views")
    has_teams = "team_name" in {f.name for f in dataclasses.fields(DagDetails)}
    assert compat.ui_supported() == (has_views and has_teams)


def test_the_connection_form_gate_matches_what_the_providers_manager_reads():
    import inspect

    from airflow import providers_manager

    assert compat.connection_form_supported() == ("conn-fields" in inspect.getsource(providers_manager))


def test_require_names_the_version_a_feature_needs():
    compat.require("anything", compat.AIRFLOW_VERSION)
    with pytest.raises(compat.AirflowOptionalProviderFeatureException, match=r"needs Airflow 99\.0 or newer"):
        compat.require("the time machine", Version("99.0"))


def test_left_out_says_so_once(caplog):
    caplog.set_level(logging.INFO, logger=compat.__name__)
    for _ in range(3):
        compat.left_out("a test feature", Version("99.0"), "nothing to do")
    lines = [r.getMessage() for r in caplog.records if "a test feature" in r.getMessage()]
    assert lines == [
        f"airflow-provider-userattrs: a test feature needs Airflow 99.0 or newer; left out on Airflow "
        f"{compat.AIRFLOW_VERSION}; nothing to do"
    ]


VERSION_CHECK = re.compile(r"AIRFLOW_VERSION\s*[<>=!]|[<>=]\s*AIRFLOW_VERSION|airflow\.__version__|AIRFLOW_V_3")


def test_no_module_but_compat_compares_airflow_versions():
    package = REPO_ROOT / "airflow_provider_userattrs"
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in package.rglob("*.py")
        if path.name != "compat.py" and VERSION_CHECK.search(path.read_text())
    ]
    assert offenders == []


# ----------------------------------------------------------------------------------------- what is declared


def test_the_declared_airflow_range_is_the_same_everywhere():
    assert str(airflow_requirement()) == AIRFLOW_REQUIREMENT
    assert AIRFLOW_REQUIREMENT in get_provider_info()["dependencies"]
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"`{AIRFLOW_REQUIREMENT}`" in readme


def test_the_matrix_covers_every_airflow_3_line_from_the_floor():
    assert MATRIX_ROWS, "scripts/matrix.sh has no table rows"
    floor = min(Version(row[1]) for row in MATRIX_ROWS)
    assert f"apache-airflow>={floor}" == AIRFLOW_REQUIREMENT
    lines = {Version(row[1]).release[:2] for row in MATRIX_ROWS}
    assert {(3, 0), (3, 1), (3, 2), (3, 3)} <= lines


def test_the_stated_pythons_are_the_ones_the_matrix_runs():
    classifiers = PYPROJECT["project"]["classifiers"]
    stated = sorted(
        Version(c.rsplit(" ", 1)[1])
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert str(stated[0]) == PYPROJECT["project"]["requires-python"].removeprefix(">=")
    matrix_pythons = {Version(row[3]) for row in MATRIX_ROWS}
    # The newest line runs on the newest stated Python (and on the oldest, in .venv); the others on the oldest.
    newest = [row for row in MATRIX_ROWS if row[4] == "newest"]
    assert [Version(row[3]) for row in newest] == [stated[-1]]
    assert matrix_pythons <= set(stated)


def test_alias_event_extras_keep_what_this_line_can_record(caplog):
    caplog.set_level(logging.INFO, logger=compat.__name__)
    extra = {"vendor": "dx", "total": 3, "attributes": ["plan", "tier"]}
    recorded = compat.alias_event_extra(extra)
    if compat.AIRFLOW_VERSION >= compat.ALIAS_EVENT_LISTS_MIN_AIRFLOW:
        assert recorded == extra
    else:  # Airflow 3.0 hashes the values: the list is left out, and the log says so
        assert recorded == {"vendor": "dx", "total": 3}
        assert any("attributes" in r.getMessage() for r in caplog.records)
    hash(frozenset(compat.alias_event_extra({"vendor": "dx", "total": 3}).items()))
