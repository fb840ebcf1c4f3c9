"""The Airflow plugin ``userattrs``, declared in the provider metadata so that installing the provider is enough.

It brings a FastAPI app (mounted by the API server at ``/userattrs``) and two external views: a nav entry with
the sync history and a "Sync report" tab on every task instance (a task that is not a sync says so).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_userattrs.ui.app import PREFIX, create_app

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


class UserAttrsPlugin(AirflowPlugin):
    """Sync history page, per-task sync report, replay of failures."""

    name = "userattrs"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "userattrs"}]
    external_views = [SYNCS_VIEW, REPORT_VIEW]
