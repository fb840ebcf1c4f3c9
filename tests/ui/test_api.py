"""The plugin's JSON endpoints against a real metadata DB, for every role and without credentials."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .conftest import REPLAY_DAG, SECRET_DAG, SECRET_TOKEN, SYNC_DAG, UiWorld


def path(kind: str, key: tuple[str, str, str, int]) -> str:
    dag_id, run_id, task_id, map_index = key
    parts = "/".join(quote(part, safe="") for part in (dag_id, run_id, task_id))
    return f"/userattrs/api/{kind}/{parts}?map_index={map_index}"


def test_plugin_is_listed_by_the_plugins_endpoint(ui: UiWorld) -> None:
    plugins = ui.get("/api/v2/plugins").json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "userattrs")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/userattrs"
    views = {v["destination"]: v for v in ours["external_views"]}
    assert views["nav"]["name"] == "User attribute syncs" and views["nav"]["href"] == "/userattrs/syncs"
    assert views["task_instance"]["name"] == "Sync report" and "{MAP_INDEX}" in views["task_instance"]["href"]


def test_history_lists_newest_first_with_every_field(ui: UiWorld) -> None:
    body = ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}&limit=100").json()
    syncs = body["syncs"]
    assert body["total_entries"] == len(syncs) == 3 * 2 + 1 + 1
    fields = {
        "dag_id",
        "run_id",
        "task_id",
        "map_index",
        "vendor",
        "conn_id",
        "state",
        "start_date",
        "total",
        "succeeded",
        "failed",
        "retryable_users",
        "requests_sent",
        "duration_seconds",
    }
    assert fields <= set(syncs[0])
    starts = [s["start_date"] for s in syncs]
    assert starts == sorted(starts, reverse=True), "newest first"
    rejecting = next(s for s in syncs if s["task_id"] == "rejecting")
    assert (rejecting["failed"], rejecting["deferrals"], rejecting["waited_seconds"]) == (10, 2, 3.5)
    assert next(s for s in syncs if s["task_id"] == "push_chunk")["deferrals"] is None, "quota only when present"


def test_history_pages_and_filters(ui: UiWorld) -> None:
    first = ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}&limit=3").json()
    second = ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}&limit=3&offset=3").json()
    assert first["total_entries"] == second["total_entries"] == 8
    assert len(first["syncs"]) == len(second["syncs"]) == 3
    keys = {(s["run_id"], s["task_id"], s["map_index"]) for s in first["syncs"] + second["syncs"]}
    assert len(keys) == 6, "pages do not overlap"
    dx = ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}&vendor=dx&limit=100").json()
    assert dx["syncs"] and {s["vendor"] for s in dx["syncs"]} == {"dx"}
    failed = ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}&state=failed").json()
    assert [s["task_id"] for s in failed["syncs"]] == ["rejecting"]
    assert ui.get("/userattrs/api/syncs?limit=0").status_code == 422
    assert ui.get("/userattrs/api/syncs?limit=101").status_code == 422


def test_report_groups_reasons_and_pages_the_failure_file(ui: UiWorld) -> None:
    body = ui.get(path("report", ui.rejected_chunk) + "&limit=4&offset=2").json()
    assert body["report"]["failed"] == 10 and body["failure_file_readable"]
    groups = {(g["reason"], g["retryable"]): g["count"] for g in body["reasons"]}
    assert groups[("DX rejected the request (HTTP 422): user_not_found", False)] == 7
    assert groups[("DX answered HTTP 503: unavailable", True)] == 1
    assert any("<user>" in reason for reason, _ in groups), "the user's own id is taken out of the reason"
    assert body["reasons"][0]["count"] == 7, "biggest group first"
    page = body["failures"]
    assert (page["total_lines"], page["offset"], page["limit"], len(page["lines"])) == (10, 2, 4, 4)
    assert page["lines"][0]["user_id"] == "ann2@example.invalid"
    assert body["retryable_lines"] == 1


def test_report_of_a_file_outside_the_roots_falls_back_to_the_report(ui: UiWorld) -> None:
    body = ui.get(path("report", ui.outside_chunk)).json()
    assert not body["failure_file_readable"] and "outside" in body["failure_file_problem"]
    assert body["failures"]["source"].startswith("the report")
    assert "root:" not in str(body), "nothing of /etc/passwd"
    download = ui.get(path("failures", ui.outside_chunk))
    assert download.status_code == 404 and "root:" not in download.text


def test_download_streams_the_failure_file(ui: UiWorld) -> None:
    response = ui.get(path("failures", ui.rejected_chunk))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.count("\n") == 10 and "user_not_found" in response.text


def test_unknown_report_is_404(ui: UiWorld) -> None:
    assert ui.get(path("report", (SYNC_DAG, "no-such-run", "push_chunk", 0))).status_code == 404


# ---------------------------------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "url",
    [
        "/userattrs/api/syncs",
        "/userattrs/syncs",
        "/userattrs/api/report/d/r/t",
        "/userattrs/report/d/r/t",
        "/userattrs/api/failures/d/r/t",
    ],
)
def test_unauthenticated_requests_get_401(ui: UiWorld, url: str) -> None:
    assert ui.get(url, who=None).status_code == 401
    assert ui.client.get(url, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)


def test_unauthenticated_replay_gets_401(ui: UiWorld) -> None:
    assert ui.post(path("replay", ui.replay_chunk), who=None, json={}).status_code == 401


@pytest.mark.parametrize("who", ["admin", "user", "viewer"])
def test_readers_see_every_dag(ui: UiWorld, who: str) -> None:
    # DAG by DAG: in a whole test session, the operators' and DAGs' own runs are the newest 100 syncs
    for dag_id in (SYNC_DAG, SECRET_DAG, REPLAY_DAG):
        listed = ui.get(f"/userattrs/api/syncs?dag_id={dag_id}", who).json()["syncs"]
        assert listed and {s["dag_id"] for s in listed} == {dag_id}
    assert ui.get(path("report", ui.secret_chunk), who).status_code == 200


def test_a_user_without_access_to_a_dag_sees_neither_its_syncs_nor_its_reports(ui: UiWorld) -> None:
    listed = ui.get("/userattrs/api/syncs?limit=100", "outsider").json()
    assert SECRET_DAG not in {s["dag_id"] for s in listed["syncs"]}
    assert ui.get(f"/userattrs/api/syncs?dag_id={SYNC_DAG}", "outsider").json()["syncs"]
    assert listed["total_entries"] == ui.get("/userattrs/api/syncs", "admin").json()["total_entries"] - 1
    assert ui.get(f"/userattrs/api/syncs?dag_id={SECRET_DAG}", "outsider").status_code == 403
    for kind in ("report", "failures"):
        assert ui.get(path(kind, ui.secret_chunk), "outsider").status_code == 403
    assert ui.get(path("report", ui.secret_chunk).replace("/api/", "/"), "outsider").status_code == 403


def test_a_user_without_any_role_sees_nothing(ui: UiWorld) -> None:
    assert ui.get("/userattrs/api/syncs", "nobody").status_code == 403
    assert ui.get(path("report", ui.rejected_chunk), "nobody").status_code == 403


def test_viewer_may_read_but_not_replay(ui: UiWorld) -> None:
    assert ui.get(path("report", ui.replay_chunk), "viewer").status_code == 200
    assert ui.post(path("replay", ui.replay_chunk), "viewer", json={}).status_code == 403
    assert ui.post(path("replay", ui.replay_chunk), "outsider", json={}).status_code == 403


def test_replay_needs_json_and_retryable_failures_and_a_replay_param(ui: UiWorld) -> None:
    assert ui.post(path("replay", ui.replay_chunk), "user", data="x").status_code == 415
    refused = ui.post(path("replay", ui.outside_chunk), "admin", json={})
    assert refused.status_code == 409 and "outside" in refused.json()["detail"]
    no_param = ui.post(path("replay", ui.rejected_chunk), "admin", json={})
    assert no_param.status_code == 400, no_param.text  # the seeded DAG has no serialized replay_from param


def test_replay_starts_a_run_of_the_same_dag_with_replay_from(ui: UiWorld) -> None:
    response = ui.post(path("replay", ui.replay_chunk), "user", json={})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["dag_id"] == REPLAY_DAG and body["retryable_lines"] == 4
    run = ui.get(f"/api/v2/dags/{REPLAY_DAG}/dagRuns/{quote(body['dag_run_id'], safe='')}").json()
    assert run["conf"] == {"replay_from": body["replay_from"], "conn_id": "dx_default"}
    assert run["state"] == "queued" and run["run_type"] == "manual"
    assert body["replay_from"].startswith(f"file://{ui.failure_root}")


# ---------------------------------------------------------------------------------------------------- secrets


def test_no_token_or_extra_reaches_any_endpoint_or_page(ui: UiWorld) -> None:
    urls = [
        "/userattrs/api/syncs?limit=100",
        "/userattrs/syncs",
        path("report", ui.rejected_chunk),
        path("report", ui.replay_chunk),
        path("report", ui.rejected_chunk).replace("/api/", "/"),
        path("failures", ui.rejected_chunk),
    ]
    for url in urls:
        for who in ("admin", "viewer"):
            response = ui.get(url, who)
            assert response.status_code == 200, url
            assert SECRET_TOKEN not in response.text and "x_secret_extra" not in response.text, url
            assert "sandbox-token" not in response.text and "password" not in response.text.lower(), url
