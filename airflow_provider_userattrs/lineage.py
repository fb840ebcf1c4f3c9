"""OpenLineage for the sync operators: what they read, what they wrote, and which column became which attribute.

Data catalogs (Marquez, DataHub, OpenMetadata) learn a pipeline from the OpenLineage events Airflow's
listener emits; an operator contributes through ``get_openlineage_facets_on_start/_on_complete/_on_failure``,
the interface Airflow's own providers implement. The operators delegate to :func:`facets_on_start`,
:func:`facets_on_complete` and :func:`facets_on_failure`, which ask the operator what it already knows (its
connection, ``sql`` and :meth:`~airflow_provider_userattrs.attribute_sources.SyncTask.attribute_sources`) and
import no operator.

- **inputs**: the tables read by ``sql``, parsed as common-sql operators parse theirs (``SQLParser`` with the
  warehouse hook's dialect, default schema and namespace). SQLite hooks publish no OpenLineage database info;
  a SQLite warehouse gets the namespace ``sqlite://<file path>`` and the schema ``main`` here.
- **output**: the vendor dataset (namespace ``userattrs://<vendor>``, name ``<conn_id>``: the dataset of the
  asset ``userattrs://<vendor>/<conn_id>``, see :mod:`airflow_provider_userattrs.assets`), with a schema of the
  attributes, the column lineage (vendor attribute <- source column, renames included) and, once done, the
  output statistics (rows = users delivered).
- **run facet** ``userattrsSync``: the report's counts, and on failure the error.

Everything OpenLineage is imported lazily: without ``apache-airflow-providers-openlineage`` these functions
return None and the operators behave as before. Nothing here reads a connection's password or extras, and
no user value is ever part of an event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_userattrs.assets import vendor_dataset
from airflow_provider_userattrs.attribute_sources import AttributeSources, SyncTask
from airflow_provider_userattrs.sync.sources import sql_hook

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.sqlparser import DatabaseInfo
    from openlineage.client.event_v2 import Dataset

log = logging.getLogger(__name__)

RUN_FACET = "userattrsSync"
"""Name of the run facet with the report's counts."""
SQLITE_SCHEMA = "main"


# -- OpenLineage -------------------------------------------------------------------------------------------------


def openlineage_available() -> bool:
    try:
        import airflow.providers.openlineage.extractors  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class SqlInputs:
    """What the sync's query reads, in OpenLineage terms."""

    datasets: list[Dataset] = field(default_factory=list)
    column_origins: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """Output column (lowercased) -> (namespace, table, column) it is computed from."""
    job_facets: dict[str, Any] = field(default_factory=dict)
    run_facets: dict[str, Any] = field(default_factory=dict)


def facets_on_start(task: Any) -> OperatorLineage[Dataset, Any] | None:
    """Inputs, the vendor output with its schema and column lineage, the query as a job facet."""
    if not openlineage_available():
        return None
    return _lineage(task, report=None)


def facets_on_complete(task: Any, task_instance: Any) -> OperatorLineage[Dataset, Any] | None:
    """As on start, plus the output statistics and the report's counts."""
    if not openlineage_available():
        return None
    return _lineage(task, report=_report_of(task, task_instance))


def facets_on_failure(task: Any, task_instance: Any) -> OperatorLineage[Dataset, Any] | None:
    """As on complete; the run facet carries the error and the counts of the report pushed before failing."""
    if not openlineage_available():
        return None
    report = _report_of(task, task_instance)
    return _lineage(task, report=report, failed=True)


def _report_of(task: Any, task_instance: Any) -> Mapping[str, Any] | None:
    """The report this try pushed: kept on the operator by ``execute``, else read back from XCom."""
    report = getattr(task, "_userattrs_report", None)
    if isinstance(report, Mapping):
        return report
    try:
        pulled = task_instance.xcom_pull(
            task_ids=task_instance.task_id, key="report", map_indexes=getattr(task_instance, "map_index", -1)
        )
    except Exception:  # no report to be had (the task failed before syncing): lineage without counts
        log.debug("no sync report for the OpenLineage facets", exc_info=True)
        return None
    return pulled if isinstance(pulled, Mapping) else None


def _lineage(task: SyncTask, report: Mapping[str, Any] | None, failed: bool = False) -> OperatorLineage[Dataset, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    conn_id = str(report["conn_id"]) if report else str(task.conn_id)
    vendor = str(report["vendor"]) if report else _vendor_of(conn_id)
    # once the sync ran, a query's columns may be asked of the warehouse (no row read) for the schema facet
    sources = task.attribute_sources(query_columns=report is not None)
    inputs = sql_inputs(str(task.sql_conn_id), str(task.sql)) if task.sql and task.sql_conn_id else SqlInputs()
    output = _vendor_output(vendor, conn_id, sources, inputs, report, failed)
    run_facets = dict(inputs.run_facets)
    if report is not None or failed:
        from airflow_provider_userattrs.lineage_facets import sync_run_facet

        run_facets[RUN_FACET] = sync_run_facet(vendor, conn_id, report, failed)
    return OperatorLineage(
        inputs=inputs.datasets,
        outputs=[output],
        run_facets=run_facets,
        job_facets=inputs.job_facets,
    )


def _vendor_of(conn_id: str) -> str:
    """The vendor is the connection's type (only the type is read)."""
    from airflow_provider_userattrs.compat import BaseHook

    return str(BaseHook.get_connection(conn_id).conn_type)


def _vendor_output(
    vendor: str,
    conn_id: str,
    sources: AttributeSources,
    inputs: SqlInputs,
    report: Mapping[str, Any] | None,
    failed: bool,
) -> Dataset:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset, schema_dataset

    namespace, name = vendor_dataset(vendor, conn_id)
    names = sources.names
    facets: dict[str, Any] = {}
    if names:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n) for n in names]
        )
    lineage = _column_lineage(sources, inputs)
    if lineage is not None:
        facets["columnLineage"] = lineage
    output_facets: dict[str, Any] = {}
    if report is not None and not report.get("dry_run") and not failed:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=int(report.get("succeeded", 0))
        )
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)


def _column_lineage(sources: AttributeSources, inputs: SqlInputs) -> Any:
    """Vendor attribute <- the table columns its source column is computed from.

    The parser tells which table column each output column of the query comes from (through aliases and
    expressions); a column it cannot trace (``SELECT *``) is taken from the only input table when there is one.
    """
    from openlineage.client.facet_v2 import column_lineage_dataset as cl

    only_table = inputs.datasets[0] if len(inputs.datasets) == 1 else None
    fields: dict[str, Any] = {}
    for attribute, column in sources.columns.items():
        origins = inputs.column_origins.get(column.lower())
        if origins is None and only_table is not None:
            origins = [(only_table.namespace, only_table.name, column)]
        if not origins:
            continue
        direct = [cl.Transformation(type="DIRECT", subtype="IDENTITY" if len(origins) == 1 else "TRANSFORMATION")]
        fields[attribute] = cl.Fields(
            inputFields=[
                cl.InputField(namespace=ns, name=table, field=col, transformations=direct) for ns, table, col in origins
            ],
            transformationType="IDENTITY" if len(origins) == 1 else "",
            transformationDescription="" if attribute == column else f"renamed from {column}",
        )
    return cl.ColumnLineageDatasetFacet(fields=fields) if fields else None


def sql_inputs(sql_conn_id: str, sql: str) -> SqlInputs:
    """The tables ``sql`` reads, with their namespace, and its column origins: as common-sql computes them."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    from airflow_provider_userattrs.compat import BaseHook

    try:
        connection = BaseHook.get_connection(sql_conn_id)
        hook = sql_hook(sql_conn_id)
        info, dialect, schema, use_connection = _database_info(hook, connection)
    except Exception as exc:  # lineage is best effort: it never fails the task
        log.warning("OpenLineage: no database info for %s (%s: %s)", sql_conn_id, type(exc).__name__, exc)
        return SqlInputs()
    if info is None:
        return SqlInputs()
    parser = SQLParser(dialect=dialect, default_schema=schema)
    engine = None
    if use_connection:
        try:
            engine = hook.get_sqlalchemy_engine()
        except Exception:
            log.debug("no SQLAlchemy engine for %s", sql_conn_id, exc_info=True)
    lineage = parser.generate_openlineage_metadata_from_sql(
        sql=sql,
        hook=hook,
        database_info=info,
        database=None,
        sqlalchemy_engine=engine,
        use_connection=use_connection,
    )
    namespace = SQLParser.create_namespace(info)
    origins = _column_origins(parser, sql, namespace, info.database, schema)
    return SqlInputs(list(lineage.inputs), origins, dict(lineage.job_facets), dict(lineage.run_facets))


def _database_info(hook: Any, connection: Any) -> tuple[DatabaseInfo | None, str, str | None, bool]:
    """(database info, dialect, default schema, whether to ask the database for table schemas).

    A hook with OpenLineage support answers itself (PostgreSQL: ``postgres://host:port``); a SQLite
    connection, which has none, is named by its file.
    """
    from airflow.providers.openlineage.sqlparser import DatabaseInfo

    info = getattr(hook, "get_openlineage_database_info", lambda _c: None)(connection)
    if info is not None:
        return info, hook.get_openlineage_database_dialect(connection), hook.get_openlineage_default_schema(), True
    if connection.conn_type == "sqlite":
        path = str(connection.host or "")
        return DatabaseInfo(scheme="sqlite", authority=path), "sqlite", SQLITE_SCHEMA, False
    return None, "generic", None, False


def _column_origins(
    parser: Any, sql: str, namespace: str, database: str | None, schema: str | None
) -> dict[str, list[tuple[str, str, str]]]:
    """Output column of the query (lowercased) -> (namespace, table, column) of its origins."""
    parsed = parser.parse(parser.split_sql_string(sql))
    origins: dict[str, list[tuple[str, str, str]]] = {}
    for lineage in getattr(parsed, "column_lineage", None) or []:
        sources = []
        for column in lineage.lineage:
            if column.origin is None:
                continue
            table = ".".join(filter(None, (column.origin.database or database, column.origin.schema or schema)))
            sources.append((namespace, f"{table}.{column.origin.name}" if table else column.origin.name, column.name))
        if sources:
            origins[lineage.descendant.name.lower()] = sources
    return origins
