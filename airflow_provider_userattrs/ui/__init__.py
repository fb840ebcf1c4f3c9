"""The provider's pages in the Airflow UI: sync history, per-task sync report, replay of failures.

``plugin.UserAttrsPlugin`` is declared in the provider metadata (``plugins``), so installing the provider is
all it takes: the API server mounts ``app.create_app()`` at ``/userattrs`` and the UI shows the external
views. One module per concern: ``history`` (metadata DB queries), ``failures`` (failure files and the
roots they may be read from), ``replay`` (starting a replay run), ``pages`` (HTML), ``app`` (the routers,
their dependencies and auth).
"""
