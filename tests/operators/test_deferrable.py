"""``deferrable`` (Airflow's convention): a long wait for the vendor's quota held by the triggerer, or slept by the
worker. Deferring stays the default here; a deployment's explicit ``[operators] default_deferrable`` is followed."""

from __future__ import annotations

import configparser

import pytest

from airflow_provider_userattrs.operators import MassUpdateOperator, UpdateUserAttributesOperator
from airflow_provider_userattrs.operators.deferrable import ENV_VAR, deployment_default_deferrable
from tests.operators.test_operators import USER_ID_FIELD, records_literal, users_of


@pytest.fixture(autouse=True)
def no_deployment_choice(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_defers_by_default_unlike_most_operators():
    assert UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[]).deferrable is True
    mass = MassUpdateOperator(task_id="m", conn_id="dx_default", attribute="a", value=1, user_ids=[1])
    assert mass.deferrable is True
    assert UpdateUserAttributesOperator(task_id="f", conn_id="x", records=[], deferrable=False).deferrable is False


@pytest.fixture
def airflow_cfg_line():
    """Put ``default_deferrable = <value>`` in the parsed airflow.cfg (ConfigParser's own sections), as a file
    would; restored afterwards."""
    from airflow.configuration import conf

    section, option = "operators", "default_deferrable"
    had_section = configparser.ConfigParser.has_section(conf, section)
    before = configparser.ConfigParser.get(conf, section, option, raw=True, fallback=None) if had_section else None

    def put(value: str) -> None:
        if not configparser.ConfigParser.has_section(conf, section):
            configparser.ConfigParser.add_section(conf, section)
        configparser.ConfigParser.set(conf, section, option, value)

    yield put
    if before is not None:
        configparser.ConfigParser.set(conf, section, option, before)
    elif had_section:
        configparser.ConfigParser.remove_option(conf, section, option)
    elif configparser.ConfigParser.has_section(conf, section):
        configparser.ConfigParser.remove_section(conf, section)


def test_the_generated_airflow_cfg_is_not_a_choice(airflow_cfg_line):
    # Airflow writes every default into the airflow.cfg it generates ("default_deferrable = false"), and
    # conf.has_option sees the built-in default anyway: neither is the deployment's choice.
    from airflow.configuration import conf

    assert deployment_default_deferrable() is None and conf.has_option("operators", "default_deferrable")
    airflow_cfg_line("false")
    assert deployment_default_deferrable() is None
    assert UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[]).deferrable is True
    airflow_cfg_line("True")  # not Airflow's default: a choice (the same as this operator's default)
    assert deployment_default_deferrable() is True


@pytest.mark.parametrize(("value", "expected"), [("False", False), ("false", False), ("True", True)])
def test_a_deployment_that_sets_default_deferrable_is_followed(monkeypatch, value, expected):
    monkeypatch.setenv(ENV_VAR, value)
    assert deployment_default_deferrable() is expected
    assert UpdateUserAttributesOperator(task_id="t", conn_id="dx_default", records=[]).deferrable is expected
    # the task's own value (or its default_args) wins over the deployment's
    assert UpdateUserAttributesOperator(task_id="o", conn_id="x", records=[], deferrable=True).deferrable is True


def test_default_args_reach_the_parameter(dag_harness):
    from tests.conftest import load_dag

    path = dag_harness.folder / "defaults.py"
    path.write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_userattrs.operators import UpdateUserAttributesOperator\n"
        "with DAG('defaults', schedule=None, start_date=pendulum.datetime(2026, 1, 1),\n"
        "         default_args={'deferrable': False}) as dag:\n"
        "    UpdateUserAttributesOperator(task_id='push', conn_id='dx_default', records=[])\n"
    )
    assert load_dag(path, "defaults").get_task("push").deferrable is False


@pytest.mark.integration
def test_not_deferrable_the_worker_sleeps_the_wait_and_delivers_everything(dag_harness, sandbox):
    # The scenario of test_deferral.py: the 7th request is answered 429 "come back in 3 s", defer_after=1.
    vendor = "dx"
    sandbox.script([{"delay": 0, "vendor": vendor}] * 6 + [{"status": 429, "retry_after": "3", "vendor": vendor}])
    result = dag_harness.run(
        "not_deferrable",
        f"""
        UpdateUserAttributesOperator(
            task_id="push", conn_id="{vendor}_default", user_id_field="{USER_ID_FIELD[vendor]}",
            records={records_literal(vendor, 30)}, checkpoint_every=10, defer_after=1, deferrable=False,
            hook_params={{"concurrency": 1}},
        )
        """,
    )
    assert result.state == "success"
    _state, tries, _ = result.tasks[("push", -1)]
    assert tries == 1
    report = result.xcom("push")
    assert (report["total"], report["succeeded"], report["failed"], report["retryable_users"]) == (30, 30, 0, 0)
    assert report["deferrals"] == 0 and report["throttled_requests"] == 1
    assert report["waited_seconds"] >= 3.0  # slept in the worker
    assert len(users_of(sandbox, vendor)) == 30
    assert sandbox.stats()["requests"]["total"] == 31 == report["requests_sent"]
