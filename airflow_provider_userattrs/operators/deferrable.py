"""``deferrable``: whether a long wait for the vendor's quota is held by the triggerer or slept by the worker.

Airflow's convention is ``deferrable=conf.getboolean("operators", "default_deferrable")``, whose built-in default
is False: most operators defer to poll a job that a worker could just as well wait for. Here the default is
True, because a quota wait is long and certain (AltaTech allows 1,000 requests an hour: a sync over that waits
most of an hour), and a worker slot sleeping through it blocks every other task of the pool meanwhile. A
deployment that chose ``[operators] default_deferrable`` itself is followed; a task's ``deferrable=`` (or its
``default_args``) wins over both.

"Chose itself" needs care: ``conf.has_option`` and ``conf.getboolean`` also see Airflow's built-in default, and
every Airflow 3 line writes *all* defaults, uncommented, into the ``airflow.cfg`` it generates on first start
(``default_deferrable = false`` is in every such file, chosen by nobody). So the option counts as chosen when it
is set in the environment (``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE``), or when ``airflow.cfg`` holds a value
other than Airflow's default. A ``false`` line in ``airflow.cfg`` cannot be told from the generated one: to turn
deferral off for a whole deployment, set the environment variable, or ``deferrable=False`` in ``default_args``.
This reads the same way on Airflow 3.0 to 3.3.
"""

from __future__ import annotations

import configparser
import os

SECTION, OPTION = "operators", "default_deferrable"
ENV_VAR = f"AIRFLOW__{SECTION.upper()}__{OPTION.upper()}"


def deployment_default_deferrable() -> bool | None:
    """``[operators] default_deferrable`` when the deployment chose it (see the module's docstring), else None."""
    from airflow.configuration import conf

    if os.environ.get(ENV_VAR, "").strip():
        return conf.getboolean(SECTION, OPTION)
    # The file's own value: ConfigParser's view of the parsed airflow.cfg, without Airflow's defaults.
    if configparser.ConfigParser.has_option(conf, SECTION, OPTION):
        raw = configparser.ConfigParser.get(conf, SECTION, OPTION, raw=True)
        default = str(conf.get_default_value(SECTION, OPTION) or "false")
        if raw.strip().lower() != default.strip().lower():
            return conf.getboolean(SECTION, OPTION)
    return None


def resolve_deferrable(deferrable: bool | None) -> bool:
    """The task's ``deferrable``: its own value, else the deployment's choice, else True."""
    if deferrable is not None:
        return bool(deferrable)
    chosen = deployment_default_deferrable()
    return True if chosen is None else chosen
