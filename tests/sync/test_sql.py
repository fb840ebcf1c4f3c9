"""The SQL of ``sync/sql.py`` and ``sync/keyset.py`` for the engines that do not run here.

Snowflake, BigQuery, Redshift, Databricks (and MySQL/MariaDB) are checked by parsing every generated
statement with sqlglot in that dialect. sqlglot reads ``%s`` only in the PostgreSQL family, so statements are
parsed as generated with ``?`` (the placeholder itself comes from the connection's driver, not from us).
The ``MERGE`` shapes then run for real where the syntax allows: as generated for Snowflake and Redshift on
PostgreSQL 15 and DuckDB (same quoting and types), and BigQuery's and Databricks' after sqlglot transpiles them
to DuckDB.
"""

from __future__ import annotations

import uuid

import pytest
import sqlglot
from sqlglot import expressions
from sqlglot.errors import ErrorLevel

from airflow_provider_userattrs.errors import SourceConfigError
from airflow_provider_userattrs.sync import keyset, sql

CLOUD = ["snowflake", "bigquery", "redshift", "databricks", "mysql"]
TABLE = "analytics.userattrs_sync_state"
SEGMENT = "SELECT id, plan, \"select\" FROM users WHERE plan <> 'x' -- trailing comment;\n;"
STATE_KEY = "o'brien's sync"


def statements(dialect: sql.SqlDialect, placeholder: str = "?") -> dict[str, sql.Statement]:
    rows = [("k", f"u{i}", "plan", "gold", "2026-11-26T00:00:00+00:00") for i in range(3)]
    common = {"sql": SEGMENT, "parameters": None, "state_key": STATE_KEY, "user_id_field": "id"}
    out = {
        "create": sql.Statement(sql.create_state_table(dialect, TABLE)),
        "upsert": sql.upsert_statements(dialect, placeholder, TABLE, rows)[0],
        "delete": sql.Statement(sql.delete_statement(dialect, placeholder, TABLE)),
        "diff": sql.diff_statement(
            dialect, placeholder, TABLE, attributes=[("plan", "plan"), ("select", "tier")], full_refresh=False, **common
        ),
        "full": sql.diff_statement(
            dialect, placeholder, TABLE, attributes=[("plan", "plan")], full_refresh=True, **common
        ),
        "leavers": sql.leavers_statement(dialect, placeholder, TABLE, **common),
        "cleared": sql.cleared_count_statement(
            dialect, placeholder, TABLE, attributes=[("plan", "plan"), ("select", "tier")], **common
        ),
        "leavers_count": sql.leavers_count_statement(dialect, placeholder, TABLE, **common),
        "state_size": sql.state_size_statement(dialect, placeholder, TABLE, STATE_KEY),
        "ordered": keyset.ordered_statement(
            dialect, placeholder, SEGMENT, None, "id", keyset.ResumePoint(5, "u7", ("ab",))
        ),
        "keys": keyset.keys_statement(dialect, placeholder, SEGMENT, None, "id"),
        "range": keyset.range_statement(dialect, placeholder, SEGMENT, None, "id", keyset.KeyRange(None, "u9", True)),
    }
    return out


@pytest.mark.parametrize("name", CLOUD)
def test_every_statement_parses_in_the_warehouses_dialect(name):
    dialect = sql.DIALECTS[name]
    for kind, statement in statements(dialect).items():
        tree = sqlglot.parse_one(statement.sql, read=dialect.name, error_level=ErrorLevel.RAISE)
        assert tree is not None, kind
        if kind == "upsert" and dialect.upsert == "merge":
            assert isinstance(tree, expressions.Merge)
            assert len(list(tree.find_all(expressions.Union))) == 2  # 3 rows in one statement


@pytest.mark.parametrize("name", [*CLOUD, "postgresql", "sqlite", "duckdb"])
def test_values_are_bound_never_pasted(name):
    dialect = sql.DIALECTS[name]
    for kind, statement in statements(dialect).items():
        assert STATE_KEY.replace("'", "''") not in statement.sql and "o'brien" not in statement.sql, kind
        assert "u7" not in statement.sql and "gold" not in statement.sql, kind
    diff = statements(dialect)["diff"]
    assert list(diff.parameters or []) == [STATE_KEY, "plan", STATE_KEY, "tier"]  # the vendor's names
    # max_removals counts with the diff's own joins, bound the same way
    assert list(statements(dialect)["cleared"].parameters or []) == [STATE_KEY, "plan", STATE_KEY, "tier"]
    assert list(statements(dialect)["leavers_count"].parameters or []) == [STATE_KEY]
    assert list(statements(dialect)["state_size"].parameters or []) == [STATE_KEY]


def test_the_count_of_cleared_attributes_reuses_the_diffs_joins():
    dialect = sql.DIALECTS["mysql"]
    common = {"sql": SEGMENT, "parameters": [7], "state_key": STATE_KEY, "user_id_field": "id"}
    attributes = [("plan", "plan"), ("select", "tier")]
    diff = sql.diff_statement(dialect, "%s", TABLE, attributes=attributes, full_refresh=False, **common)
    cleared = sql.cleared_count_statement(dialect, "%s", TABLE, attributes=attributes, **common)
    joins = diff.sql[diff.sql.index(" FROM ") : diff.sql.rindex(" WHERE ")]  # the diff's own WHERE is the last
    assert cleared.sql.endswith(joins) and "`analytics`.`userattrs_sync_state`" in joins
    assert cleared.parameters == diff.parameters == [7, STATE_KEY, "plan", STATE_KEY, "tier"]  # the user's first
    assert cleared.sql.count("CASE WHEN CAST(src.") == 2  # one term per attribute


def test_identifiers_are_quoted_by_the_dialect_and_text_has_its_type():
    assert sql.DIALECTS["bigquery"].quoted("a.b") == "`a`.`b`"
    assert sql.DIALECTS["postgresql"].quoted('we"ird') == '"we""ird"'
    assert sql.DIALECTS["mysql"].text("x") == "CAST(x AS CHAR)"
    assert sql.DIALECTS["redshift"].text("x") == "CAST(x AS VARCHAR(65535))"  # TEXT would be VARCHAR(256)
    assert sql.DIALECTS["bigquery"].text("x") == "CAST(x AS STRING)"


def test_a_users_query_bound_by_name_gets_named_values():
    dialect = sql.DIALECTS["postgresql"]
    statement = keyset.ordered_statement(
        dialect, "%s", "SELECT id FROM t WHERE a = %(a)s", {"a": 1}, "id", keyset.ResumePoint(3, "u", ())
    )
    assert "%(userattrs_0)s" in statement.sql and statement.parameters == {"a": 1, "userattrs_0": "u"}


def test_a_percent_in_a_query_without_parameters_is_kept_for_format_style_drivers():
    statement = keyset.ordered_statement(
        sql.DIALECTS["postgresql"], "%s", "SELECT id FROM t WHERE p LIKE '%x'", None, "id", keyset.ResumePoint(1, "a")
    )
    assert "LIKE '%%x'" in statement.sql and statement.parameters == ["a"]
    qmark = keyset.ordered_statement(
        sql.DIALECTS["sqlite"], "?", "SELECT id FROM t WHERE p LIKE '%x'", None, "id", keyset.ResumePoint(1, "a")
    )
    assert "LIKE '%x'" in qmark.sql


class _Hook:
    def __init__(self, dialect_name: str, escape_word_format: str = '"{}"') -> None:
        self.dialect_name = dialect_name
        self.escape_word_format = escape_word_format


def test_the_engine_comes_from_common_sqls_dialect_name_and_an_unknown_one_cannot_hold_state():
    assert sql.dialect_of(_Hook("postgresql")) is sql.DIALECTS["postgresql"]
    assert sql.dialect_of(_Hook("mariadb")) is sql.DIALECTS["mysql"]
    trino = sql.dialect_of(_Hook("trino"))
    assert trino.upsert is None and trino.quote == '"'
    with pytest.raises(SourceConfigError, match=r"dialect 'trino'.*\"dialect\""):
        sql.require_upsert(trino, "wh")
    assert sql.dialect_of(_Hook("mssql", "[{}]")).quote == "["
    overridden = _Hook("default")
    overridden.connection_extra = {"dialect": "snowflake"}  # type: ignore[attr-defined]
    assert sql.dialect_of(overridden) is sql.DIALECTS["snowflake"]


def _state_rows(prefix: str) -> list[tuple[str, str, str, str, str]]:
    return [("k", f"{prefix}{i}", "plan", f"v{i}", "t") for i in range(600)]  # 3 MERGE batches


def _run_merges(execute, dialect: sql.SqlDialect, placeholder: str, table: str, create=None) -> None:
    execute(sql.create_state_table(create or dialect, table), None)
    for statement in sql.upsert_statements(dialect, placeholder, table, _state_rows("u")):
        execute(statement.sql, statement.parameters)
    changed = [("k", "u1", "plan", "changed", "t2"), ("k", "new", "plan", "n", "t2")]
    for statement in sql.upsert_statements(dialect, placeholder, table, changed):
        execute(statement.sql, statement.parameters)


@pytest.mark.parametrize("name", ["snowflake", "redshift"])
def test_the_merge_of_snowflake_and_redshift_runs_on_postgresql(postgres_dsn, name):
    import psycopg2

    schema = f"userattrs_merge_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"CREATE SCHEMA {schema}")
    try:
        _run_merges(cur.execute, sql.DIALECTS[name], "%s", f"{schema}.state")
        cur.execute(f"SELECT count(*), max(CASE WHEN user_id = 'u1' THEN value END) FROM {schema}.state")
        assert cur.fetchone() == (601, "changed")
    finally:
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.mark.parametrize("name", ["snowflake", "redshift", "bigquery", "databricks"])
def test_the_merge_runs_on_duckdb_as_generated_or_transpiled(name):
    import duckdb

    dialect = sql.DIALECTS[name]
    conn = duckdb.connect()
    transpile = dialect.quote != '"'  # backticks: sqlglot writes the statements for DuckDB (placeholders kept)

    def execute(text: str, parameters) -> None:
        if transpile and parameters:
            text = sqlglot.transpile(text, read=dialect.name, write="duckdb")[0]
        conn.execute(text, parameters) if parameters else conn.execute(text)

    # The table itself is DuckDB's (BigQuery's NOT ENFORCED key is not DuckDB syntax): the MERGE is what runs.
    _run_merges(execute, dialect, "?", "state", create=sql.DIALECTS["duckdb"] if transpile else None)
    assert conn.execute("SELECT count(*), max(CASE WHEN user_id = 'u1' THEN value END) FROM state").fetchone() == (
        601,
        "changed",
    )
