"""The FastAPI app the API server mounts at ``/userattrs``: JSON endpoints and the two pages.

The routes are written as Airflow's own API routes are: module-level routers (:data:`api_router` for the JSON
endpoints under ``/api``, :data:`pages_router` for the HTML views) of plain functions whose session, user, DAG
bag, task key and filter come from ``Depends``; :func:`create_app` assembles them with the pages' HTML errors.
A task instance's sync is looked up by :func:`find_sync` alone (404 when it has none).

Authentication and authorization are Airflow's own: ``get_user`` (session cookie or bearer token, 401 without)
and ``requires_access_dag`` (403), with the readable DAGs from the configured auth manager filtering every list.
The sub-app has no ``app.state`` of the main app, so the auth manager is taken from ``get_auth_manager()``,
as ``requires_access_dag`` itself does. The app publishes no OpenAPI document nor docs pages (they would be
served without authentication); every numeric parameter is bounded (a parameter out of range or malformed
is a 422: JSON on the API, an HTML page on the pages).

What a report or failure file says passes through :func:`shown` on its way to the API and the pages: the
vendor's words through Airflow's secrets masker, text UTF-8 cannot hold escaped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlparse

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from airflow_provider_userattrs.compat import redact
from airflow_provider_userattrs.sync.report import storable
from airflow_provider_userattrs.ui import failures, history, pages
from airflow_provider_userattrs.ui.models import FailurePage, ReplayResponse, ReportResponse, SyncEntry, SyncList
from airflow_provider_userattrs.ui.replay import ReplayRefused, start_replay, supports_replay

PREFIX = "/userattrs"
CHART_RUN_ENTRIES = 500
"""Newest sync entries the chart sums into runs (the table pages through all of them)."""

ReadDag = Depends(requires_access_dag(method="GET"))
ReadReport = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))
TriggerDag = Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))
MAX_INT = 2**31 - 1
"""The largest offset or map index asked for (the metadata DB's integers; no history or file is that long)."""
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
MapIndex = Annotated[int, Query(ge=-1, le=MAX_INT)]


# ------------------------------------------------------------------------------------------------ dependencies


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


def task_key(dag_id: str, run_id: str, task_id: str, map_index: MapIndex = -1) -> history.TaskKey:
    """The task instance a report, download or replay URL names: the path, and ``map_index`` in the query."""
    return history.TaskKey(dag_id, run_id, task_id, map_index)


def sync_filter(
    dag_id: str | None = None,
    vendor: str | None = None,
    state: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> history.SyncFilter:
    """The history's filter and page, from the query (an empty value means "any")."""
    return history.SyncFilter(dag_id or None, vendor or None, state or None, limit, offset)


def json_body(request: Request) -> None:
    """A cross-site form cannot send JSON without a CORS preflight: requiring it keeps cookie-borne CSRF out."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the request as application/json")


DagBagDep = Annotated[Any, Depends(dag_bag)]
TaskKeyDep = Annotated[history.TaskKey, Depends(task_key)]
SyncFilterDep = Annotated[history.SyncFilter, Depends(sync_filter)]


# ------------------------------------------------------------------------------------------------ the lookup


class NoSyncReport(HTTPException):
    """404: the task instance has no ``report`` XCom (the pages answer it with their own page)."""

    def __init__(self, key: history.TaskKey) -> None:
        super().__init__(status.HTTP_404_NOT_FOUND, "This task instance has no sync report")
        self.key = key


@dataclass(frozen=True)
class FoundSync:
    """A task instance's sync: its history entry and its full report."""

    key: history.TaskKey
    entry: SyncEntry
    report: dict[str, Any]

    @property
    def failure_file(self) -> str:
        return str(self.report.get("failure_file") or "")


def find_sync(session: Session, key: history.TaskKey) -> FoundSync:
    """The sync of the task instance ``key``, or :class:`NoSyncReport` (404)."""
    found = history.get_sync(session, key)
    if found is None:
        raise NoSyncReport(key)
    return FoundSync(key, *found)


# ------------------------------------------------------------------------------------------------ assembling


def _fallback_lines(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report.get("failures") or [] if isinstance(f, dict)]


def _shown_line(line: Any) -> Any:
    if isinstance(line, dict) and isinstance(line.get("reason"), str):
        return {**line, "reason": redact(line["reason"])}
    return line


def shown(resp: ReportResponse) -> ReportResponse:
    """What the API and the pages show of a report: the vendor's words (``error``, every ``reason``) through
    Airflow's secrets masker, and every text UTF-8 cannot hold (a lone surrogate) escaped, so that the answer
    can always be written. (The download streams the file as the task wrote it, its reasons masked then.)"""
    report = dict(resp.report)
    if isinstance(report.get("error"), str):
        report["error"] = redact(report["error"])
    if isinstance(report.get("failures"), list):
        report["failures"] = [_shown_line(f) for f in report["failures"]]
    page = resp.failures.model_copy(update={"lines": storable([_shown_line(line) for line in resp.failures.lines])})
    reasons = [
        g.model_copy(update={"reason": storable(redact(g.reason)), "attributes": storable(g.attributes)})
        for g in resp.reasons
    ]
    return resp.model_copy(update={"report": storable(report), "reasons": reasons, "failures": page})


def build_report(session: Session, bag: Any, sync: FoundSync, limit: int, offset: int) -> ReportResponse:
    """The report with its failures grouped by reason and one page of lines (the report's own when the
    failure file may not be read), as :func:`shown` lets it be shown."""
    report, url = sync.report, sync.failure_file
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
    dag = bag.get_latest_version_of_dag(sync.key.dag_id, session=session)
    response = ReportResponse(
        sync=sync.entry,
        report=report,
        reasons=summary.groups,
        reasons_source=source,
        retryable_lines=summary.retryable_lines if problem is None else 0,
        failure_file_readable=problem is None,
        failure_file_problem=problem,
        failures=FailurePage(source=source, total_lines=total, limit=limit, offset=offset, lines=lines),
        replay_supported=dag is not None and supports_replay(dag),
    )
    return shown(response)


def _download_name(key: history.TaskKey) -> str:
    raw = f"{key.dag_id}_{key.run_id}_{key.task_id}_{key.map_index}_failures.jsonl"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def _stream(url: str) -> Iterator[bytes]:
    from airflow.sdk import ObjectStoragePath

    with ObjectStoragePath(url).open("rb") as handle:  # type: ignore[no-untyped-call]
        while chunk := handle.read(65536):
            yield chunk


# ------------------------------------------------------------------------------------------------ JSON API

api_router = APIRouter(prefix="/api")


@api_router.get("/syncs", dependencies=[ReadDag])
def list_syncs(session: SessionDep, user: GetUserDep, flt: SyncFilterDep) -> SyncList:
    entries, total = history.list_syncs(session, readable_dag_ids(user), flt)
    return SyncList(syncs=entries, total_entries=total)


@api_router.get("/report/{dag_id}/{run_id}/{task_id}", dependencies=[ReadReport])
def get_report(
    session: SessionDep, bag: DagBagDep, key: TaskKeyDep, limit: Limit = 50, offset: Offset = 0
) -> ReportResponse:
    return build_report(session, bag, find_sync(session, key), limit, offset)


@api_router.get("/failures/{dag_id}/{run_id}/{task_id}", dependencies=[ReadReport])
def download_failures(session: SessionDep, key: TaskKeyDep) -> Response:
    url = find_sync(session, key).failure_file
    try:
        next(failures.open_lines(url), None)  # refuses paths outside the roots and missing files
    except failures.FailureFileRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    headers = {"Content-Disposition": f'attachment; filename="{_download_name(key)}"'}
    return StreamingResponse(_stream(url), media_type="application/x-ndjson", headers=headers)


@api_router.post("/replay/{dag_id}/{run_id}/{task_id}", dependencies=[TriggerDag, Depends(json_body)], status_code=201)
def replay(session: SessionDep, user: GetUserDep, bag: DagBagDep, key: TaskKeyDep) -> ReplayResponse:
    sync = find_sync(session, key)
    try:
        retryable = failures.summarize(failures.open_lines(sync.failure_file), scan_limit=10**9).retryable_lines
    except failures.FailureFileRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not retryable:
        raise HTTPException(status.HTTP_409_CONFLICT, "No retryable failure to resend (rejections are never retried)")
    try:
        new_run = start_replay(session, bag, key, sync.report, sync.failure_file, user.get_name())
    except ReplayRefused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return ReplayResponse(
        dag_id=key.dag_id, dag_run_id=new_run, replay_from=sync.failure_file, retryable_lines=retryable
    )


# ------------------------------------------------------------------------------------------------ HTML pages

pages_router = APIRouter()


@pages_router.get("/syncs", response_class=HTMLResponse, dependencies=[ReadDag])
def syncs_view(session: SessionDep, user: GetUserDep, flt: SyncFilterDep) -> HTMLResponse:
    readable = readable_dag_ids(user)
    entries, total = history.list_syncs(session, readable, flt)
    chart = dataclasses.replace(flt, limit=CHART_RUN_ENTRIES, offset=0)
    points = history.run_points(history.list_syncs(session, readable, chart)[0])
    return HTMLResponse(pages.syncs_page(entries, total, flt, points, sorted(readable), base_path()))


@pages_router.get("/report/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[ReadReport])
def report_view(
    session: SessionDep,
    user: GetUserDep,
    bag: DagBagDep,
    key: TaskKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> HTMLResponse:
    resp = build_report(session, bag, find_sync(session, key), limit, offset)
    return HTMLResponse(pages.report_page(resp, base_path(), may_trigger(user, key.dag_id)))


def _is_api(request: Request) -> bool:
    return f"{PREFIX}/api/" in request.url.path or request.url.path.startswith("/api/")


async def html_for_pages(request: Request, exc: HTTPException) -> Response:
    """Pages answer errors in HTML (with the same status); the JSON API keeps Airflow's JSON errors."""
    if _is_api(request):
        return await http_exception_handler(request, exc)
    if isinstance(exc, NoSyncReport):
        key = exc.key
        page = pages.no_report_page(key.dag_id, key.run_id, key.task_id, key.map_index)
        return HTMLResponse(page, status_code=exc.status_code)
    return HTMLResponse(pages.error_page(exc.status_code, str(exc.detail), base_path()), status_code=exc.status_code)


async def html_for_invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
    """A malformed or out-of-range parameter: the API answers FastAPI's JSON 422, a page an HTML 422 that names
    the parameters and what they must be (never the value sent)."""
    if _is_api(request):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'request'}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    )
    return HTMLResponse(pages.error_page(422, f"Invalid parameters: {problems}", base_path()), status_code=422)


# ------------------------------------------------------------------------------------------------ the app


def create_app() -> FastAPI:
    """The app the plugin mounts at :data:`PREFIX`: both routers and the pages' HTML errors; no OpenAPI
    document or docs pages (they would be served to anonymous callers)."""
    app = FastAPI(
        title="User attribute syncs",
        description="Sync history, sync reports and replay of failures (airflow-provider-userattrs).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.exception_handler(HTTPException)(html_for_pages)
    app.exception_handler(RequestValidationError)(html_for_invalid_parameters)
    app.include_router(api_router)
    app.include_router(pages_router)
    return app
