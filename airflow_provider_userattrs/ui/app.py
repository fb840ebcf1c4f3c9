"""The FastAPI app the API server mounts at ``/userattrs``: JSON endpoints and the two pages.

Authentication and authorization are Airflow's own: ``get_user`` (session cookie or bearer token, 401 without)
and ``requires_access_dag`` (403), with the readable DAGs from the configured auth manager filtering every list.
The sub-app has no ``app.state`` of the main app, so the auth manager is taken from ``get_auth_manager()``,
as ``requires_access_dag`` itself does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlparse

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from airflow_provider_userattrs.ui import failures, history, pages
from airflow_provider_userattrs.ui.models import FailurePage, ReplayResponse, ReportResponse, SyncList
from airflow_provider_userattrs.ui.replay import ReplayRefused, start_replay, supports_replay

PREFIX = "/userattrs"
CHART_RUN_ENTRIES = 500
"""Newest sync entries the chart sums into runs (the table pages through all of them)."""

ReadDag = Depends(requires_access_dag(method="GET"))
ReadReport = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))
TriggerDag = Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0)]
MapIndex = Annotated[int, Query(ge=-1)]


def base_path() -> str:
    """The path Airflow is served under (``[api] base_url``), so that links work behind a proxy prefix too."""
    from airflow.configuration import conf

    return urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def readable_dag_ids(user: Any) -> set[str]:
    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def may_trigger(user: Any, dag_id: str) -> bool:
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return bool(
        get_auth_manager().is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=details, user=user
        )
    )


def dag_bag(request: Request) -> Any:
    """One cached DB DAG bag per app (the same kind the API server's own routes use)."""
    bag = getattr(request.app.state, "dag_bag", None)
    if bag is None:
        from airflow.api_fastapi.common.dagbag import create_dag_bag

        bag = request.app.state.dag_bag = create_dag_bag()
    return bag


# ------------------------------------------------------------------------------------------------ assembling


def sync_filter(
    dag_id: str | None, vendor: str | None, state: str | None, limit: int, offset: int
) -> history.SyncFilter:
    return history.SyncFilter(dag_id or None, vendor or None, state or None, limit, offset)


def _fallback_lines(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report.get("failures") or [] if isinstance(f, dict)]


def build_report(session: Session, bag: Any, key: history.TaskKey, limit: int, offset: int) -> ReportResponse:
    found = history.get_sync(session, key)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This task instance has no sync report")
    entry, report = found
    url = str(report.get("failure_file") or "")
    problem: str | None = None
    try:
        summary = failures.summarize(failures.open_lines(url))
        lines = failures.page(failures.open_lines(url), limit, offset)
        source = "the failure file" + (" (first lines only)" if summary.partial else "")
        total: int | None = None if summary.partial else summary.lines
    except failures.FailureFileRefused as exc:
        problem = str(exc)
        kept = _fallback_lines(report)
        summary = failures.summarize(iter(kept))
        lines, total = kept[offset : offset + limit], len(kept)
        source = "the report's first failures" + (" (truncated)" if report.get("failures_truncated") else "")
    dag = bag.get_latest_version_of_dag(key.dag_id, session=session)
    return ReportResponse(
        sync=entry,
        report=report,
        reasons=summary.groups,
        reasons_source=source,
        retryable_lines=summary.retryable_lines if problem is None else 0,
        failure_file_readable=problem is None,
        failure_file_problem=problem,
        failures=FailurePage(source=source, total_lines=total, limit=limit, offset=offset, lines=lines),
        replay_supported=dag is not None and supports_replay(dag),
    )


def _download_name(key: history.TaskKey) -> str:
    raw = f"{key.dag_id}_{key.run_id}_{key.task_id}_{key.map_index}_failures.jsonl"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def _stream(url: str) -> Iterator[bytes]:
    from airflow.sdk import ObjectStoragePath

    with ObjectStoragePath(url).open("rb") as handle:  # type: ignore[no-untyped-call]
        while chunk := handle.read(65536):
            yield chunk


# ------------------------------------------------------------------------------------------------ the app


def create_app() -> FastAPI:
    app = FastAPI(
        title="User attribute syncs",
        description="Sync history, sync reports and replay of failures (airflow-provider-userattrs).",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(HTTPException)
    async def html_for_pages(request: Request, exc: HTTPException) -> Response:
        """Pages answer errors in HTML (with the same status); the JSON API keeps Airflow's JSON errors."""
        if f"{PREFIX}/api/" in request.url.path or request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        return HTMLResponse(
            pages.error_page(exc.status_code, str(exc.detail), base_path()), status_code=exc.status_code
        )

    @app.get("/api/syncs", dependencies=[ReadDag])
    def list_syncs(
        session: SessionDep,
        user: GetUserDep,
        dag_id: str | None = None,
        vendor: str | None = None,
        state: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> SyncList:
        entries, total = history.list_syncs(
            session, readable_dag_ids(user), sync_filter(dag_id, vendor, state, limit, offset)
        )
        return SyncList(syncs=entries, total_entries=total)

    @app.get("/api/report/{dag_id}/{run_id}/{task_id}", dependencies=[ReadReport])
    def get_report(
        request: Request,
        session: SessionDep,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: MapIndex = -1,
        limit: Limit = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> ReportResponse:
        key = history.TaskKey(dag_id, run_id, task_id, map_index)
        return build_report(session, dag_bag(request), key, limit, offset)

    @app.get("/api/failures/{dag_id}/{run_id}/{task_id}", dependencies=[ReadReport])
    def download_failures(
        session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: MapIndex = -1
    ) -> Response:
        key = history.TaskKey(dag_id, run_id, task_id, map_index)
        found = history.get_sync(session, key)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "This task instance has no sync report")
        url = str(found[1].get("failure_file") or "")
        try:
            next(failures.open_lines(url), None)  # refuses paths outside the roots and missing files
        except failures.FailureFileRefused as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        headers = {"Content-Disposition": f'attachment; filename="{_download_name(key)}"'}
        return StreamingResponse(_stream(url), media_type="application/x-ndjson", headers=headers)

    @app.post("/api/replay/{dag_id}/{run_id}/{task_id}", dependencies=[TriggerDag], status_code=201)
    def replay(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: MapIndex = -1,
    ) -> ReplayResponse:
        if not request.headers.get("content-type", "").startswith("application/json"):
            # A cross-site form cannot send JSON without a CORS preflight: this keeps cookie-borne CSRF out.
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the request as application/json")
        key = history.TaskKey(dag_id, run_id, task_id, map_index)
        found = history.get_sync(session, key)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "This task instance has no sync report")
        report = found[1]
        url = str(report.get("failure_file") or "")
        try:
            retryable = failures.summarize(failures.open_lines(url), scan_limit=10**9).retryable_lines
        except failures.FailureFileRefused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        if not retryable:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "No retryable failure to resend (rejections are never retried)"
            )
        try:
            new_run = start_replay(session, dag_bag(request), key, report, url, user.get_name())
        except ReplayRefused as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return ReplayResponse(dag_id=dag_id, dag_run_id=new_run, replay_from=url, retryable_lines=retryable)

    @app.get("/syncs", response_class=HTMLResponse, dependencies=[ReadDag])
    def syncs_view(
        session: SessionDep,
        user: GetUserDep,
        dag_id: str | None = None,
        vendor: str | None = None,
        state: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> HTMLResponse:
        readable = readable_dag_ids(user)
        flt = sync_filter(dag_id, vendor, state, limit, offset)
        entries, total = history.list_syncs(session, readable, flt)
        recent, _ = history.list_syncs(session, readable, sync_filter(dag_id, vendor, state, CHART_RUN_ENTRIES, 0))
        points = history.run_points(recent)
        return HTMLResponse(pages.syncs_page(entries, total, flt, points, sorted(readable), base_path()))

    @app.get("/report/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[ReadReport])
    def report_view(
        request: Request,
        session: SessionDep,
        user: GetUserDep,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: MapIndex = -1,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> HTMLResponse:
        key = history.TaskKey(dag_id, run_id, task_id, map_index)
        if history.get_sync(session, key) is None:
            return HTMLResponse(pages.no_report_page(dag_id, run_id, task_id, map_index), status_code=404)
        resp = build_report(session, dag_bag(request), key, limit, offset)
        return HTMLResponse(pages.report_page(resp, base_path(), may_trigger(user, dag_id)))

    return app
