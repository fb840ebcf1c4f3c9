"""The Airflow plugin ``userattrs``, declared in the provider metadata so that installing the provider is enough.

It brings a FastAPI app (mounted by the API server at ``/userattrs``) and two external views: a nav entry with
the sync history and a "Sync report" tab on every task instance (a task that is not a sync says so). The UI
needs Airflow 3.1 or newer (compat.UI_MIN_AIRFLOW); on an older Airflow the plugin is empty and says so once.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_userattrs.compat import UI_MIN_AIRFLOW, left_out, ui_supported

PREFIX = "/userattrs"
"""Where the API server mounts the plugin's app (ui/app.py serves under it)."""

SYNCS_VIEW = {
    "name": "User attribute syncs",
    "href": f"{PREFIX}/syncs",
    "destination": "nav",
    "category": "browse",
    "url_route": "userattrs-syncs",
}
REPORT_VIEW = {
    "name": "Sync report",
    "href": f"{PREFIX}/report/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}?map_index={{MAP_INDEX}}",
    "destination": "task_instance",
    "url_route": "userattrs-report",
}


def _apps() -> list[dict[str, Any]]:
    if not ui_supported():
        left_out("the UI plugin (sync history, Sync report tab)", UI_MIN_AIRFLOW, "syncs run and report as usual")
        return []
    from airflow_provider_userattrs.ui.app import create_app  # the UI's dependencies only where they exist

    return [{"app": create_app(), "url_prefix": PREFIX, "name": "userattrs"}]


class UserAttrsPlugin(AirflowPlugin):
    """Sync history page, per-task sync report, replay of failures."""

    name = "userattrs"
    fastapi_apps = _apps()
    external_views = [SYNCS_VIEW, REPORT_VIEW] if fastapi_apps else []
