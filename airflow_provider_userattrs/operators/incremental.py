"""Change-only syncs: send what changed since the last values the vendor accepted.

State is the last value delivered per (sync, user, attribute). With a SQL source it lives in the
warehouse (a table this module creates) and the diff is one query there, so a 1M-row segment is diffed
by the database, not in Python; with records it lives in one JSON document under ``ObjectStoragePath``.
State is written after delivery only, chunk by chunk: a crash between the two causes a resend, never a
skip, and a user that failed stays different, so the next run sends it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_userattrs.operators.sources import Item
from airflow_provider_userattrs.operators.storage import write_text_atomically
from airflow_provider_userattrs.results import UserUpdate

STATE_TABLE = "userattrs_sync_state"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

StateUpdate = tuple[str, str, str | None]
"""(user, attribute, text of the delivered value, or None to forget the attribute)."""


def value_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class WarehouseState:
    """The state table in the warehouse, and the diff query against it."""

    def __init__(self, sql_conn_id: str, state_key: str, table: str = STATE_TABLE) -> None:
        from airflow.sdk import BaseHook

        if not all(_IDENTIFIER.match(part) for part in table.split(".")):
            raise ValueError(f"state table {table!r} is not a plain (schema.)table name")
        self.hook: Any = BaseHook.get_connection(sql_conn_id).get_hook()
        self.sql_conn_id = sql_conn_id
        self.state_key = state_key
        self.table = table
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self.hook.get_conn()
            self._ensure_table()
        return self._conn

    @property
    def _mark(self) -> str:
        return "?" if type(self.conn).__module__.startswith("sqlite3") else "%s"

    def _ensure_table(self) -> None:
        cursor = self._conn.cursor()
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (state_key VARCHAR(250) NOT NULL, user_id VARCHAR(320) NOT NULL, "
            "attribute VARCHAR(255) NOT NULL, value TEXT, synced_at VARCHAR(40), "
            "PRIMARY KEY (state_key, user_id, attribute))"
        )
        self._conn.commit()
        cursor.close()

    def columns(self, sql: str) -> list[str]:
        cursor = self.conn.cursor()
        cursor.execute(f"SELECT * FROM ({sql}) userattrs_src WHERE 1 = 0")
        names = [d[0] for d in cursor.description]
        cursor.close()
        return names

    def diff_sql(self, sql: str, user_id_field: str, attributes: Sequence[str], full_refresh: bool) -> str:
        """Rows of the segment with a changed attribute, with the previous and current text of each."""
        uid = f"CAST(src.{_quote(user_id_field)} AS TEXT)"
        select = ["src.*"]
        joins, changed = [], []
        for index, name in enumerate(attributes):
            current = f"CAST(src.{_quote(name)} AS TEXT)"
            alias = f"s{index}"
            select.append(f"{current} AS __cur_{index}")
            select.append(f"{alias}.value AS __prev_{index}")
            joins.append(
                f"LEFT JOIN {self.table} {alias} ON {alias}.state_key = {_literal(self.state_key)} "
                f"AND {alias}.user_id = {uid} AND {alias}.attribute = {_literal(name)}"
            )
            # No NULL is stored (a removal deletes the row): a missing row means "nothing delivered".
            changed.append(
                f"({alias}.value IS NULL AND {current} IS NOT NULL) OR "
                f"({alias}.value IS NOT NULL AND ({current} IS NULL OR {current} <> {alias}.value))"
            )
        where = "" if full_refresh else "WHERE " + " OR ".join(f"({c})" for c in changed)
        return f"SELECT {', '.join(select)} FROM ({sql}) src {' '.join(joins)} {where} ORDER BY {uid}"

    def stream_diff(self, diff_sql: str, parameters: Any, fetch_size: int) -> Iterator[dict[str, Any]]:
        """Rows of the diff query, streamed.

        SQLite lets no other connection write while a read is open: with a separate cursor streaming the diff,
        the state writes after each chunk would wait forever (seen at 1M rows). There, the diff is
        materialised in a temporary table of the state's own connection and read back from it.
        """
        if not type(self.conn).__module__.startswith("sqlite3"):
            from airflow_provider_userattrs.operators.sources import stream_sql

            yield from stream_sql(self.sql_conn_id, diff_sql, parameters, fetch_size)
            return
        cursor = self.conn.cursor()
        cursor.execute("DROP TABLE IF EXISTS temp.userattrs_diff")
        create = f"CREATE TEMP TABLE userattrs_diff AS {diff_sql}"
        cursor.execute(create, parameters) if parameters is not None else cursor.execute(create)
        cursor.execute("SELECT * FROM temp.userattrs_diff ORDER BY rowid")
        columns = [d[0] for d in cursor.description]
        try:
            while rows := cursor.fetchmany(fetch_size):
                for row in rows:
                    yield dict(zip(columns, row, strict=False))
        finally:
            cursor.close()
            self.conn.execute("DROP TABLE IF EXISTS temp.userattrs_diff")

    def changed_items(
        self,
        rows: Iterable[Mapping[str, Any]],
        user_id_field: str,
        attributes: Sequence[str],
        renames: Mapping[str, str],
        full_refresh: bool,
    ) -> Iterator[Item]:
        for position, row in enumerate(rows):
            user_id = row.get(user_id_field)
            values: dict[str, Any] = {}
            state: dict[str, str | None] = {}
            for index, name in enumerate(attributes):
                current, previous = row.get(f"__cur_{index}"), row.get(f"__prev_{index}")
                if (current == previous and not full_refresh) or (current is None and previous is None):
                    continue
                values[renames.get(name, name)] = row.get(name)
                state[renames.get(name, name)] = current
            if user_id is None:
                yield Item(position, None, f"record {position}: field {user_id_field!r} (the user id) is NULL")
            elif values:
                yield Item(position, UserUpdate(user_id, values), state=state, state_user=str(user_id))

    def leaver_items(self, sql: str, user_id_field: str, start: int) -> Iterator[Item]:
        """Users with state whose rows left the segment: their attributes are removed where possible."""
        # An anti-join, not NOT EXISTS: both databases hash or index it; a correlated subquery would scan
        # the segment once per state row.
        query = (
            f"SELECT s.user_id, s.attribute FROM {self.table} s LEFT JOIN "
            f"(SELECT DISTINCT CAST(src.{_quote(user_id_field)} AS TEXT) AS uid FROM ({sql}) src) present "
            f"ON present.uid = s.user_id WHERE s.state_key = {_literal(self.state_key)} AND present.uid IS NULL "
            "ORDER BY s.user_id, s.attribute"
        )
        cursor = self.conn.cursor()
        cursor.execute(query)
        current: str | None = None
        names: list[str] = []
        position = start
        for user, attribute in cursor.fetchall():
            if user != current and current is not None:
                yield _leaver(position, current, names)
                position += 1
                names = []
            current = user
            names.append(attribute)
        if current is not None:
            yield _leaver(position, current, names)
        cursor.close()

    def record(self, updates: Sequence[StateUpdate]) -> None:
        if not updates:
            return
        mark = self._mark
        cursor = self.conn.cursor()
        keep = [(self.state_key, u, a, v) for u, a, v in updates if v is not None]
        drop = [(self.state_key, u, a) for u, a, v in updates if v is None]
        if keep:
            cursor.executemany(
                f"INSERT INTO {self.table} (state_key, user_id, attribute, value, synced_at) "
                f"VALUES ({mark}, {mark}, {mark}, {mark}, CAST(CURRENT_TIMESTAMP AS TEXT)) "
                "ON CONFLICT (state_key, user_id, attribute) DO UPDATE SET value = excluded.value, "
                "synced_at = excluded.synced_at",
                keep,
            )
        if drop:
            cursor.executemany(
                f"DELETE FROM {self.table} WHERE state_key = {mark} AND user_id = {mark} AND attribute = {mark}", drop
            )
        self.conn.commit()
        cursor.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _leaver(position: int, user: str, names: Sequence[str]) -> Item:
    update = UserUpdate(user, dict.fromkeys(names))
    return Item(position, update, state=dict.fromkeys(names), state_user=user, removal=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ObjectState:
    """State of a records-based sync: one JSON document ``{user: {attribute: text}}`` in object storage."""

    def __init__(self, root: str, state_key: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", state_key)
        self.path = ObjectStoragePath(root) / "_state" / f"{safe}.json"
        self.values: dict[str, dict[str, str]] = {}
        if self.path.exists():
            self.values = json.loads(self.path.read_text() or "{}")

    def changed_items(
        self, records: Iterable[Mapping[str, Any]], user_id_field: str, attributes: Any, full_refresh: bool
    ) -> Iterator[Item]:
        from airflow_provider_userattrs.operators.sources import from_records

        for item in from_records(records, user_id_field, attributes):
            if item.update is None:
                yield item
                continue
            user = str(item.update.user_id)
            known = self.values.get(user, {})
            state = {name: value_text(value) for name, value in item.update.attributes.items()}
            changed = {
                name: value
                for name, value in item.update.attributes.items()
                if full_refresh or known.get(name) != state[name]
            }
            changed = {n: v for n, v in changed.items() if not (v is None and n not in known)}
            if changed:
                update = UserUpdate(item.update.user_id, changed)
                yield Item(item.position, update, state={n: state[n] for n in changed}, state_user=user)

    def leaver_items(self, records: Iterable[Mapping[str, Any]], user_id_field: str, start: int) -> Iterator[Item]:
        present = {str(r.get(user_id_field)) for r in records if isinstance(r, Mapping)}
        for offset, user in enumerate(sorted(set(self.values) - present)):
            yield _leaver(start + offset, user, sorted(self.values[user]))

    def record(self, updates: Sequence[StateUpdate]) -> None:
        if not updates:
            return
        for user, attribute, text in updates:
            if text is None:
                self.values.get(user, {}).pop(attribute, None)
                if user in self.values and not self.values[user]:
                    del self.values[user]
            else:
                self.values.setdefault(user, {})[attribute] = text
        write_text_atomically(self.path, json.dumps(self.values))

    def close(self) -> None:
        pass
