"""An Airflow API app wired to the test metadata DB, with the ``userattrs`` plugin loaded the way Airflow loads it.

The plugin comes from the provider metadata (``get_provider_info()["plugins"]``), which Airflow reads when
``[core] lazy_discover_providers`` is off; the fixture turns it off and clears the plugin caches so that
``create_app()`` mounts what the API server would. Users are SimpleAuthManager's roles, plus an ``outsider``
(a viewer refused one DAG by a DAG-scoped auth manager) and ``nobody`` (no role: no DAG readable).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "userattrs_ui_history_bench", Path(__file__).resolve().parents[2] / "benchmarks" / "ui_history.py"
)
assert _SPEC and _SPEC.loader
bench = sys.modules.setdefault(_SPEC.name, importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(bench)
sample_report, seed_history = bench.sample_report, bench.seed_history

SYNC_DAG = "ui_sync_dag"
SECRET_DAG = "ui_secret_dag"
REPLAY_DAG = "ui_replay_dag"
SECRET_TOKEN = "sk-live-ui-test-SECRET-9f8e7d"
REPLAY_DAG_SOURCE = f'''
import pendulum
from airflow.sdk import DAG, Param
from airflow_provider_userattrs.operators import UpdateUserAttributesOperator

with DAG("{REPLAY_DAG}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         params={{"conn_id": Param("dx_default", type="string"), "replay_from": Param("", type="string")}}):
    UpdateUserAttributesOperator(task_id="push", conn_id="{{{{ params.conn_id }}}}", records=[],
                                 replay_from="{{{{ params.replay_from }}}}")
'''


def _dag_scoped_manager() -> Any:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class DagScopedAuthManager(SimpleAuthManager):
        """SimpleAuthManager, except that the user ``outsider`` may not see ``SECRET_DAG`` at all."""

        def is_authorized_dag(self, *, method, user, access_entity=None, details=None):  # type: ignore[override]
            if user.get_name() == "outsider" and details is not None and details.id == SECRET_DAG:
                return False
            return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)

        def get_authorized_dag_ids(self, *, user, method="GET", session=None):  # type: ignore[override]
            kwargs = {"session": session} if session is not None else {}
            ids = super().get_authorized_dag_ids(user=user, method=method, **kwargs)
            return {d for d in ids if not (user.get_name() == "outsider" and d == SECRET_DAG)}

    return DagScopedAuthManager()


@dataclass
class UiWorld:
    client: Any
    headers: dict[str, dict[str, str]]
    failure_root: Path
    rejected_chunk: tuple[str, str, str, int]
    replay_chunk: tuple[str, str, str, int]
    outside_chunk: tuple[str, str, str, int]
    secret_chunk: tuple[str, str, str, int]

    def get(self, url: str, who: str | None = "admin", **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers.get(who or "", {}), **kwargs)

    def post(self, url: str, who: str | None = "admin", **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers.get(who or "", {}), **kwargs)


def write_failure_file(path: Path, lines: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return f"file://{path}"


REJECTED_LINES = [
    {
        "user_id": f"ann{i}@example.invalid",
        "attribute": "vip_level",
        "outcome": "rejected",
        "value": "gold",
        "reason": "DX rejected the request (HTTP 422): user_not_found",
        "retryable": False,
    }
    for i in range(7)
] + [
    {
        "user_id": "bob@example.com",
        "attribute": "last_purchase_date",
        "outcome": "rejected",
        "value": "2024-02-31",
        "reason": "user bob@example.com: last_purchase_date '2024-02-31' is not a date",
        "retryable": False,
    },
    {
        "user_id": "<script>alert(1)</script>",
        "attribute": "name",
        "outcome": "rejected",
        "value": "<b>x</b>",
        "reason": "user id '<script>alert(1)</script>' is not valid for DX: <img src=x onerror=alert(2)>",
        "retryable": False,
    },
    {
        "user_id": "carl@example.com",
        "attribute": "vip_level",
        "outcome": "failed",
        "value": "silver",
        "reason": "DX answered HTTP 503: unavailable",
        "retryable": True,
    },
]


@pytest.fixture(scope="package")
def ui(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    from airflow import settings
    from airflow.api_fastapi import app as api_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    from airflow_provider_userattrs.compat import DagBag, auth_manager_slot, reset_plugins, sync_bag_to_db

    root = tmp_path_factory.mktemp("failures")
    patch = pytest.MonkeyPatch()
    patch.setenv("USERATTRS_FAILURE_PATH", f"file://{root}")
    patch.setenv(
        "AIRFLOW_CONN_DX_DEFAULT",
        json.dumps(
            {
                "conn_type": "dx",
                "host": "http://127.0.0.1:9",
                "password": SECRET_TOKEN,
                "extra": {"x_secret_extra": SECRET_TOKEN},
            }
        ),
    )
    patch.setattr(settings, "LAZY_LOAD_PROVIDERS", False)
    reset_plugins()  # loaded again by create_app(), now with the provider's plugin
    manager = _dag_scoped_manager()
    slot, attribute = auth_manager_slot()
    patch.setattr(slot, attribute, manager)
    # create_app() makes the auth manager: from 3.2 it keeps the one in the slot (same class), 3.1 makes a new one
    patch.setattr(api_app, "create_auth_manager", lambda: manager)
    try:
        rejected_file = write_failure_file(
            root / SYNC_DAG / "run" / "push_chunk" / "map-0" / "failures.jsonl", REJECTED_LINES
        )
        retry_lines = [
            dict(line, retryable=True, outcome="failed", reason="DX answered HTTP 503") for line in REJECTED_LINES[:4]
        ]
        replay_file = write_failure_file(root / REPLAY_DAG / "run" / "push" / "failures.jsonl", retry_lines)
        with create_session() as session:
            seed_history(session, [SYNC_DAG], runs=3, chunks=2)
            secret = seed_history(session, [SECRET_DAG], runs=1, chunks=1)
            outside = seed_history(
                session,
                [SYNC_DAG],
                runs=1,
                chunks=1,
                task_id="outside",
                report_for=lambda v, c, i: sample_report(v, c, i, failure_file="file:///etc/passwd"),
            )
            rejected = seed_history(
                session,
                [SYNC_DAG],
                runs=1,
                chunks=1,
                task_id="rejecting",
                report_for=lambda v, c, i: {
                    **sample_report("dx", "dx_default", i, failure_file=rejected_file),
                    "failed": 10,
                    "succeeded": 990,
                    "retryable_users": 1,
                    "deferrals": 2,
                    "waited_seconds": 3.5,
                },
                state="failed",
            )
            dag_file = tmp_path_factory.mktemp("dags") / f"{REPLAY_DAG}.py"
            dag_file.write_text(REPLAY_DAG_SOURCE)
            bag = DagBag(dag_folder=str(dag_file))
            assert not bag.import_errors, bag.import_errors
            sync_bag_to_db(bag, "dags-folder", None, session=session)
            session.commit()
            replayable = seed_history(
                session,
                [REPLAY_DAG],
                runs=1,
                chunks=1,
                task_id="push",
                report_for=lambda v, c, i: {
                    **sample_report("dx", "dx_default", i, failure_file=replay_file),
                    "failed": 4,
                    "retryable_users": 4,
                },
            )
        app = api_app.create_app("core")
        am = api_app.get_auth_manager()
        users = {"admin": "admin", "viewer": "viewer", "user": "user", "outsider": "viewer", "nobody": None}
        headers = {
            name: {"Authorization": f"Bearer {am.generate_jwt(SimpleAuthManagerUser(username=name, role=role))}"}
            for name, role in users.items()
        }
        yield UiWorld(
            client=TestClient(app),
            headers=headers,
            failure_root=root,
            rejected_chunk=(SYNC_DAG, rejected[0].run_id, "rejecting", 0),
            replay_chunk=(REPLAY_DAG, replayable[0].run_id, "push", 0),
            outside_chunk=(SYNC_DAG, outside[0].run_id, "outside", 0),
            secret_chunk=(SECRET_DAG, secret[0].run_id, "push_chunk", 0),
        )
    finally:
        patch.undo()
        reset_plugins()
