"""A vendor that echoes the token it refused: the token shows in no report, failure file, API answer or page.

The DAG runs for real (``dag.test()``) against the sandbox scripted to answer with the token in its body: a
422 rejection of one user (its reason reaches the failure file and the report's failures) and a 401 refusal
(the report's ``error``). The UI then reads those reports from the metadata DB. A report written without
masking (by an older release) is masked by the UI itself, with the secrets the API server's own masker knows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_userattrs.sandbox import SandboxServer

from .conftest import UiWorld, write_failure_file
from .test_api import path

pytestmark = pytest.mark.integration

TOKEN = "dx-echoed-token-0f4e8a2c9b7d61e3"
"""Unique to this module: the in-process task registers it with the masker for the rest of the session."""
SERVER_TOKEN = "api-server-known-secret-3c5d7e9f1a"
"""A secret only Airflow core's masker knows (as the API server's own connections are)."""
MASKING_DAG = "ui_masking_dag"


def _echo(status: int, body: dict[str, object]) -> dict[str, object]:
    return {"status": status, "body": json.dumps(body), "vendor": "dx"}


def _ui_texts(ui: UiWorld, key: tuple[str, str, str, int]) -> list[str]:
    report = path("report", key)
    texts = []
    for url in (report, report.replace("/api/", "/"), path("failures", key), "/userattrs/api/syncs?limit=100"):
        response = ui.get(url)
        download = "/failures/" in url  # a sync stopped by the refusal has no failure file: 404
        assert response.status_code in ((200, 404) if download else (200,)), (url, response.text)
        texts.append(response.text)
    return texts


def test_an_echoed_token_reaches_no_report_failure_file_or_ui(ui: UiWorld, dag_harness, monkeypatch) -> None:
    with SandboxServer(port=0, tokens=[TOKEN]) as vendor:
        conn = {"conn_type": "dx", "host": vendor.url, "password": TOKEN, "extra": {"max_attempts": 1}}
        monkeypatch.setenv("AIRFLOW_CONN_ECHO_DX", json.dumps(conn))
        vendor.script(
            [
                _echo(422, {"ok": False, "error": f"Invalid token {TOKEN}"}),  # the first task's one call
                _echo(401, {"detail": f"Invalid token {TOKEN}"}),  # the second task's one call
            ]
        )
        result = dag_harness.run(
            "secrets_echo",
            """
            rejected = UpdateUserAttributesOperator(
                task_id="rejected", conn_id="echo_dx", user_id_field="email", max_failure_ratio=1.0,
                records=[{"email": "ann@example.com", "plan": "gold"}],
            )
            refused = UpdateUserAttributesOperator(
                task_id="refused", conn_id="echo_dx", user_id_field="email", trigger_rule="all_done",
                records=[{"email": "bob@example.com", "plan": "gold"}],
            )
            rejected >> refused
            """,
        )
    assert (result.task_state("rejected"), result.task_state("refused")) == ("success", "failed")
    rejection, refusal = result.xcom("rejected", "report"), result.xcom("refused", "report")
    # The vendor's words are there, the token is not (masked here; the client may also scrub it first).
    assert rejection["failures"][0]["reason"].startswith("DX rejected the request (HTTP 422): Invalid token ")
    assert "Invalid token " in refusal["error"]
    xcoms = json.dumps(
        [result.xcom(task, key) for task in ("rejected", "refused") for key in ("report", "return_value")]
    )
    assert TOKEN not in xcoms

    failure_file = Path(rejection["failure_file"].removeprefix("file://"))
    written = "".join(p.read_text() for p in failure_file.parent.rglob("*.jsonl"))
    assert "Invalid token " in written and TOKEN not in written

    for task in ("rejected", "refused"):
        texts = _ui_texts(ui, ("secrets_echo", result.run_id, task, -1))
        assert "Invalid token " in "".join(texts[:2]), task
        assert all(TOKEN not in text for text in texts), task


def test_the_ui_masks_a_report_written_without_masking(ui: UiWorld, monkeypatch) -> None:
    from airflow._shared.secrets_masker import mask_secret
    from airflow.utils.session import create_session

    from .conftest import bench

    mask_secret(SERVER_TOKEN)  # what the API server's masker knows (its connections), not the task's
    said = f"DX refused (HTTP 422): Invalid token {SERVER_TOKEN}"
    line = {"user_id": "ann@example.com", "attribute": "plan", "outcome": "rejected", "value": "gold"}
    lines = [{**line, "reason": said, "retryable": False}]
    failure_file = write_failure_file(ui.failure_root / MASKING_DAG / "old" / "failures.jsonl", lines)
    old_report = {
        **bench.sample_report("dx", "dx_default", 1, failure_file=failure_file),
        "error": f"DX refused the credentials (HTTP 401: Invalid token {SERVER_TOKEN})",
        "failed": 1,
        "failures": [{"user_id": "ann@example.com", "attribute": "plan", "reason": said, "retryable": False}],
    }
    with create_session() as session:
        (run,) = bench.seed_history(
            session, [MASKING_DAG], runs=1, chunks=1, task_id="old", report_for=lambda v, c, i: old_report
        )
    report = ui.get(path("report", (MASKING_DAG, run.run_id, "old", 0)))
    page = ui.get(path("report", (MASKING_DAG, run.run_id, "old", 0)).replace("/api/", "/"))
    assert report.status_code == page.status_code == 200
    body = report.json()
    assert body["report"]["error"] == "DX refused the credentials (HTTP 401: Invalid token ***)"
    assert body["report"]["failures"][0]["reason"] == body["failures"]["lines"][0]["reason"]
    assert body["reasons"][0]["reason"] == "DX refused (HTTP 422): Invalid token ***"
    assert SERVER_TOKEN not in report.text and SERVER_TOKEN not in page.text
    assert "Invalid token ***" in page.text


def test_text_utf8_cannot_hold_is_shown_escaped_not_a_500(ui: UiWorld) -> None:
    from airflow.utils.session import create_session

    from .conftest import bench

    line = {"user_id": "u\ud800", "attribute": "plan", "outcome": "rejected", "value": "x\udcff", "retryable": False}
    failure_file = ui.failure_root / MASKING_DAG / "surrogates" / "failures.jsonl"
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(json.dumps({**line, "reason": "vendor said \ud800"}) + "\n")  # JSON escapes: ASCII
    report = {
        **bench.sample_report("dx", "dx_default", 1, failure_file=f"file://{failure_file}"),
        "failed": 1,
        "failures": [{"user_id": "u\\ud800", "attribute": "plan", "reason": "vendor said \\ud800", "retryable": False}],
    }
    with create_session() as session:
        (run,) = bench.seed_history(
            session, [MASKING_DAG], runs=1, chunks=1, task_id="surrogates", report_for=lambda v, c, i: report
        )
    key = (MASKING_DAG, run.run_id, "surrogates", 0)
    api = ui.get(path("report", key))
    assert api.status_code == 200, api.text
    (shown,) = api.json()["failures"]["lines"]
    assert (shown["user_id"], shown["value"], shown["reason"]) == ("u\\ud800", "x\\udcff", "vendor said \\ud800")
    page = ui.get(path("report", key).replace("/api/", "/"))
    assert page.status_code == 200 and "vendor said \\ud800" in page.text
