"""Tokens never show: after successful, failing and 401 runs, scan task logs, XCom, rendered template
fields, failure files and exception text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_provider_userattrs.hooks import VendorAuthError, get_hook
from airflow_provider_userattrs.results import UserUpdate
from airflow_provider_userattrs.sandbox import SandboxServer

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-token-0123456789abcdefghijklmnopqrstuvwxyz"
WRONG = "wr0ng-token-abcdefghijklmnopqrstuvwxyz-0123456789"


def _everything_airflow_kept(run_ids: list[str], home: Path, failures: Path) -> str:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    texts = []
    with create_session() as session:
        for model in (XComModel, RenderedTaskInstanceFields, TaskInstance):
            for row in session.query(model).filter(model.run_id.in_(run_ids)):
                texts.append(json.dumps({c.name: str(getattr(row, c.name)) for c in model.__table__.columns}))
    for folder in (home / "logs", failures):
        for path in folder.rglob("*"):
            if path.is_file():
                texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_no_token_in_logs_xcom_rendered_fields_failure_files(dag_harness, monkeypatch, tmp_path):
    with SandboxServer(tokens=[SECRET], usercom_attributes=["a"]) as vendor:
        good = {"conn_type": "dx", "host": vendor.url, "password": SECRET}
        bad = {"conn_type": "usercom", "host": vendor.url, "password": WRONG}
        monkeypatch.setenv("AIRFLOW_CONN_SECRET_DX", json.dumps(good))
        monkeypatch.setenv("AIRFLOW_CONN_WRONG_USERCOM", json.dumps(bad))
        vendor.script([{"status": 503}] * 30)  # transient failures: reasons and retries get logged too
        result = dag_harness.run(
            "secrets",
            """
            ok = UpdateUserAttributesOperator(
                task_id="good_token", conn_id="secret_dx", user_id_field="email", max_failure_ratio=1.0,
                records=[{"email": f"s{i}@example.com", "v": "x"} for i in range(20)] + [{"email": "bad", "v": 1}],
                hook_params={"max_attempts": 2, "backoff_base": 0.01},
            )
            refused = MassUpdateOperator(task_id="wrong_token", conn_id="wrong_usercom", attribute="a", value=1,
                                         user_ids=[1, 2, 3])
            """,
        )
    assert result.task_state("wrong_token") == "failed"
    kept = _everything_airflow_kept([result.run_id], Path(os.environ["AIRFLOW_HOME"]), tmp_path / "failures")
    assert "good_token" in kept and "wrong_token" in kept  # the scan did see the runs' records
    assert SECRET not in kept and WRONG not in kept


def test_no_token_in_exceptions_reprs_or_test_connection(monkeypatch, caplog):
    with SandboxServer(tokens=[SECRET], usercom_attributes=["x"]) as vendor:
        for vendor_type in ("altatech", "fyno", "dx", "usercom"):
            conn = {"conn_type": vendor_type, "host": vendor.url, "password": WRONG, "extra": {"workspace_id": "w"}}
            monkeypatch.setenv("AIRFLOW_CONN_LEAK", json.dumps(conn))
            hook = get_hook("leak", max_attempts=1)
            with pytest.raises(VendorAuthError) as error:
                list(hook.update_users([UserUpdate(1 if vendor_type == "usercom" else "a@example.com", {"x": "y"})]))
            ok, message = hook.test_connection()
            texts = [str(error.value), repr(error.value), repr(hook), message, caplog.text]
            assert not ok and all(WRONG not in text for text in texts), vendor_type
        assert all("token" not in r["path"] for r in vendor.requests())
