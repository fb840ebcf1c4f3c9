"""A deterministic demo warehouse: ``users``, their ``orders`` and the ``user_attributes`` view the syncs read.

Why it exists: the sync DAGs, the benchmarks and the end-to-end tests all need a source that looks like a
production warehouse (skewed order histories, a few whales, a couple of percent of broken rows) and that is
byte-for-byte the same on every machine, so that a count, a timing or a rejected user seen once can be
reproduced. Everything derives from one seed through ``random.Random(seed)`` and from the fixed anchor date
:data:`ANCHOR_DATE`; nothing reads the clock or the global random state.

The same rows go to SQLite (one file, nothing to install), to DuckDB (one file, the ``duckdb`` extra) or to
PostgreSQL (a dedicated schema), and ``user_attributes`` returns the same values, with the same Python types,
on all three, so a DAG can be developed on SQLite and run on PostgreSQL or DuckDB. Rows are produced in chunks
by a generator, so building 1,000,000 users takes constant memory in Python (DuckDB's own buffers, within its
``memory_limit``, reach about 450 MB for that size, mostly at the final checkpoint).

Command line::

    python -m airflow_provider_userattrs.demo.warehouse --target /tmp/demo.db --users 100000
    python -m airflow_provider_userattrs.demo.warehouse --target /tmp/demo.duckdb --users 100000
    python -m airflow_provider_userattrs.demo.warehouse --target postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import io
import itertools
import json
import random
import re
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ANCHOR_DATE = date(2026, 11, 1)
""""Today" of the demo world: every date is relative to it, so a rebuild next year gives the same data."""

DEFAULT_SCHEMA = "userattrs_demo"
"""PostgreSQL schema of the demo tables: a dedicated one, because a rebuild drops what it replaces."""

DEFAULT_USERS = 5000
DEFAULT_SEED = 7
DEFAULT_CHUNK_SIZE = 10_000
"""Users per insert batch: large enough to amortise a round trip, small enough to keep memory flat."""

DIRTY_KINDS: tuple[str, ...] = (
    "null_country",
    "null_email",
    "long_full_name",
    "bad_date",
    "unknown_dx_email",
    "unknown_usercom_id",
)
"""The kinds of broken rows, also the keys of the summary's ``dirty`` counts.

* ``null_country`` / ``null_email``: the column is NULL (hooks must skip or reject, never send ``null``).
* ``long_full_name``: ``full_name`` of 300-400 characters, over Fyno's 255 limit.
* ``bad_date``: ``users.last_seen_override`` holds an impossible date (``2024-13-45``, ``2023-02-30``...), which
  ``user_attributes.last_purchase_date`` returns instead of the real one.
* ``unknown_dx_email``: the email ends in ``@example.invalid``, which the sandbox's DX treats as unknown users.
* ``unknown_usercom_id``: ``usercom_id`` is ``900000000 + n``, which the sandbox's User.com treats as unknown.
"""

DIRTY_BLOCK = 50
"""One user in every block of this many is dirty (2 %); kinds rotate by block, so each kind shows up as soon
as the warehouse has ``DIRTY_BLOCK * len(DIRTY_KINDS)`` (300) users, and the counts stay even at any size."""

UNKNOWN_USERCOM_ID_BASE = 900_000_000
UNKNOWN_EMAIL_DOMAIN = "example.invalid"
EMAIL_DOMAIN = "example.com"
BAD_DATES: tuple[str, ...] = ("2024-13-45", "2023-02-30", "2025-00-12", "2022-04-31", "2021-06-00", "2026-02-29")
LONG_NAME_MIN, LONG_NAME_MAX = 300, 400

VIP_LEVELS: tuple[tuple[int, str], ...] = ((5000, "platinum"), (1500, "gold"), (500, "silver"))
"""``(lifetime_value threshold, level)``, highest first; below the last threshold the level is ``none``."""

CHURN_RISKS: tuple[tuple[float, str], ...] = ((0.66, "high"), (0.33, "medium"))
"""``(churn_score threshold, risk)``, highest first; below the last threshold the risk is ``low``."""

USER_ATTRIBUTES_COLUMNS: tuple[str, ...] = (
    "user_id",
    "email",
    "usercom_id",
    "fyno_distinct_id",
    "lifetime_value",
    "order_count",
    "last_purchase_date",
    "vip_level",
    "products_ordered",
    "churn_risk",
    "country",
    "full_name",
)
"""The columns of the ``user_attributes`` view, in order."""

USERS_COLUMNS: tuple[str, ...] = (
    "user_id",
    "email",
    "usercom_id",
    "fyno_distinct_id",
    "full_name",
    "country",
    "signup_date",
    "churn_score",
    "last_seen_override",
)
ORDERS_COLUMNS: tuple[str, ...] = ("order_id", "user_id", "product", "amount", "ordered_at")

# (name, base price in cents, relative popularity): cheap things sell more often.
PRODUCTS: tuple[tuple[str, int, int], ...] = (
    ("Bluetooth Speaker", 8999, 6),
    ("Charging Pad", 2999, 9),
    ("Coffee Grinder", 5999, 5),
    ("Desk Lamp", 3499, 7),
    ("E-Reader", 13999, 4),
    ("Ergonomic Chair", 34999, 2),
    ("Fitness Tracker", 9999, 5),
    ("Gift Card", 5000, 6),
    ("Laptop Stand", 4599, 6),
    ("Mechanical Keyboard", 12999, 4),
    ("Monitor 27in", 27999, 2),
    ("Noise-Cancelling Headphones", 29999, 3),
    ("Phone Case", 1999, 10),
    ("Portable SSD 1TB", 10999, 4),
    ("Smart Watch", 24999, 3),
    ("Standing Desk", 49999, 1),
    ("Travel Backpack", 8499, 4),
    ("USB-C Hub", 3999, 8),
    ("Webcam HD", 6999, 5),
    ("Wireless Earbuds", 7999, 7),
)

# (display, ASCII for the email address): a few accents and an apostrophe, as real names have.
_FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Anna", "anna"), ("Ben", "ben"), ("Carla", "carla"), ("David", "david"), ("Elena", "elena"),
    ("Felix", "felix"), ("Grace", "grace"), ("Hugo", "hugo"), ("Ines", "ines"), ("Jakub", "jakub"),
    ("Kai", "kai"), ("Lena", "lena"), ("Marco", "marco"), ("Nina", "nina"), ("Oscar", "oscar"),
    ("Priya", "priya"), ("Quentin", "quentin"), ("Rosa", "rosa"), ("Sam", "sam"), ("Tomasz", "tomasz"),
    ("Uma", "uma"), ("Victor", "victor"), ("Wei", "wei"), ("Yara", "yara"), ("Zoë", "zoe"),
    ("José", "jose"), ("Łukasz", "lukasz"), ("Chloé", "chloe"), ("Søren", "soren"), ("Aiko", "aiko"),
    ("Liam", "liam"), ("Maya", "maya"), ("Noah", "noah"), ("Olivia", "olivia"), ("Emma", "emma"),
    ("Lucas", "lucas"), ("Sofia", "sofia"), ("Mateo", "mateo"), ("Amara", "amara"), ("Ravi", "ravi"),
)  # fmt: skip
_LAST_NAMES: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"), ("Johnson", "johnson"), ("Müller", "muller"), ("Schmidt", "schmidt"),
    ("García", "garcia"), ("Martínez", "martinez"), ("Rossi", "rossi"), ("Bianchi", "bianchi"),
    ("Dubois", "dubois"), ("Lefèvre", "lefevre"), ("Kowalski", "kowalski"), ("Nowak", "nowak"),
    ("Jansen", "jansen"), ("de Vries", "devries"), ("Andersson", "andersson"), ("Nielsen", "nielsen"),
    ("O'Brien", "obrien"), ("Murphy", "murphy"), ("Silva", "silva"), ("Santos", "santos"),
    ("Tanaka", "tanaka"), ("Suzuki", "suzuki"), ("Kim", "kim"), ("Park", "park"), ("Chen", "chen"),
    ("Wang", "wang"), ("Patel", "patel"), ("Sharma", "sharma"), ("Okafor", "okafor"), ("Mensah", "mensah"),
    ("Novak", "novak"), ("Horvat", "horvat"), ("Popescu", "popescu"), ("Ivanova", "ivanova"),
    ("Cohen", "cohen"), ("Levi", "levi"), ("Brown", "brown"), ("Taylor", "taylor"), ("Wilson", "wilson"),
    ("Moreau", "moreau"),
)  # fmt: skip
# (ISO country code, relative share of users).
_COUNTRIES: tuple[tuple[str, int], ...] = (
    ("US", 30), ("GB", 10), ("DE", 10), ("FR", 7), ("PL", 5), ("ES", 5), ("IT", 5), ("NL", 4), ("SE", 3),
    ("BR", 5), ("IN", 6), ("JP", 4), ("CA", 3), ("AU", 3),
)  # fmt: skip
# Orders per ordinary user, 0..15: a long tail; whales (below) sit at the top of it.
_ORDER_COUNT_WEIGHTS: tuple[float, ...] = (
    18, 20, 17, 13, 9, 6, 4, 3, 2, 2, 1.5, 1.2, 1, 0.8, 0.6, 0.5,
)  # fmt: skip
_WHALE_SHARE = 0.02
_WHALE_MIN_ORDERS = 8
_MAX_ORDERS = 15
_WHALE_AMOUNT_FACTOR = 3
_MAX_SIGNUP_DAYS_AGO = 5 * 365

UserRow = tuple[str, str | None, int, str, str, str | None, str, float, str | None]
OrderRow = tuple[int, str, str, float, str]

_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?",
    re.DOTALL,
)
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"})
_DUCKDB_URL_PREFIX = "duckdb:///"
_DUCKDB_SUFFIX = ".duckdb"
DUCKDB_FLUSH_USERS = 100_000
"""DuckDB loads the generated rows through a CSV file and ``COPY``: one file (and one ``COPY`` per table)
per this many users, so the temporary file stays small (about 30 MB) at any warehouse size."""


class WarehouseError(RuntimeError):
    """The database refused the build (unreachable server, no rights, locked file...).

    One exception type for all engines, so the CLI and callers need not import a driver to catch it; the
    driver's own error is chained as ``__cause__``.
    """


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Running totals, for weighted draws by ``bisect`` (several times faster than ``Random.choices``)."""
    return list(itertools.accumulate(weights))


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Rows for one batch of consecutive users: what one insert round (or one COPY pair) writes."""

    users: list[UserRow]
    orders: list[OrderRow]


class _RowGenerator:
    """Produces the warehouse rows, user after user, from one seeded random stream.

    The rows depend only on the seed and the user's position, never on the chunk size. Dirt is drawn from
    a second stream, so a clean build holds exactly the rows of a dirty build minus the damage: the
    same users, names and orders.
    """

    def __init__(self, users: int, seed: int, dirty: bool) -> None:
        self._users = users
        self._rng = random.Random(seed)
        self._dirt_rng = random.Random(f"userattrs-demo-dirt-{seed}")
        self._dirty = dirty
        self._dirty_position = -1  # position of the dirty user inside the current block
        self.dirty_counts: dict[str, int] = dict.fromkeys(DIRTY_KINDS, 0)
        self.orders_generated = 0  # also the last order_id given: ids run 1..n without gaps
        self._country_cum = _cumulative([share for _, share in _COUNTRIES])
        self._order_count_cum = _cumulative(_ORDER_COUNT_WEIGHTS)
        self._product_cum = _cumulative([popularity for _, _, popularity in PRODUCTS])
        # Date strings by "days before the anchor": formatting a date per order would dominate the run time.
        self._days = [(ANCHOR_DATE - timedelta(days=d)).isoformat() for d in range(_MAX_SIGNUP_DAYS_AGO + 1)]
        self._minutes = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]

    def chunks(self, chunk_size: int) -> Iterator[_Chunk]:
        """Yield the rows of ``chunk_size`` users at a time; counts are complete once exhausted."""
        for start in range(1, self._users + 1, chunk_size):
            stop = min(start + chunk_size, self._users + 1)
            users: list[UserRow] = []
            orders: list[OrderRow] = []
            for index in range(start, stop):
                user, user_orders = self._user(index)
                users.append(user)
                orders.extend(user_orders)
            yield _Chunk(users, orders)

    def _user(self, index: int) -> tuple[UserRow, list[OrderRow]]:
        rand = self._rng.random
        first, first_ascii = _FIRST_NAMES[int(rand() * len(_FIRST_NAMES))]
        last, last_ascii = _LAST_NAMES[int(rand() * len(_LAST_NAMES))]
        country = _COUNTRIES[bisect.bisect(self._country_cum, rand() * self._country_cum[-1])][0]
        signup_days_ago = 1 + int(rand() * _MAX_SIGNUP_DAYS_AGO)
        whale = rand() < _WHALE_SHARE
        if whale:
            order_count = _WHALE_MIN_ORDERS + int(rand() * (_MAX_ORDERS - _WHALE_MIN_ORDERS + 1))
        else:
            order_count = bisect.bisect(self._order_count_cum, rand() * self._order_count_cum[-1])

        user_id = f"u{index:06d}"
        # (days before the anchor, second of the day, product index, cents); sorted below into time order.
        drafts: list[tuple[int, int, int, int]] = []
        for _ in range(order_count):
            product = bisect.bisect(self._product_cum, rand() * self._product_cum[-1])
            draw = rand()
            quantity = 1 + (draw < 0.2) + (draw < 0.05)
            cents = int(PRODUCTS[product][1] * quantity * (0.85 + 0.3 * rand()))
            if whale:
                cents *= _WHALE_AMOUNT_FACTOR
            days_ago = 1 + int(rand() * signup_days_ago)  # between the signup day and the day before the anchor
            drafts.append((days_ago, int(rand() * 86400), product, cents))
        drafts.sort(key=lambda draft: (-draft[0], draft[1]))

        orders: list[OrderRow] = []
        for days_ago, second, product, cents in drafts:
            self.orders_generated += 1
            orders.append(
                (
                    self.orders_generated,
                    user_id,
                    PRODUCTS[product][0],
                    cents / 100,  # the nearest double of the 2-decimal amount; str() of it is that decimal
                    f"{self._days[days_ago]} {self._minutes[second // 60]}:{second % 60:02d}",
                )
            )

        # Churn: the longer since the last order, the likelier; users who never bought are the likeliest.
        if drafts:
            recency = min(1.0, drafts[-1][0] / 365)
            churn_score = round(0.7 * rand() + 0.3 * recency, 4)
        else:
            churn_score = round(0.45 + 0.55 * rand(), 4)

        user: UserRow = (
            user_id,
            f"{first_ascii}.{last_ascii}{index}@{EMAIL_DOMAIN}",
            index,
            f"fd-{index:06d}",
            f"{first} {last}",
            country,
            self._days[signup_days_ago],
            churn_score,
            None,
        )
        if self._dirty:
            user = self._maybe_dirty(index, user)
        return user, orders

    def _maybe_dirty(self, index: int, user: UserRow) -> UserRow:
        """Damage the one chosen user of each block of :data:`DIRTY_BLOCK` users, in the block's kind."""
        block, position = divmod(index - 1, DIRTY_BLOCK)
        if position == 0:
            self._dirty_position = int(self._dirt_rng.random() * DIRTY_BLOCK)
        if position != self._dirty_position:
            return user
        kind = DIRTY_KINDS[block % len(DIRTY_KINDS)]
        user_id, email, usercom_id, fyno_id, full_name, country, signup_date, churn_score, override = user
        if kind == "null_country":
            country = None
        elif kind == "null_email":
            email = None
        elif kind == "long_full_name":
            full_name = self._long_name(full_name)
        elif kind == "bad_date":
            override = BAD_DATES[int(self._dirt_rng.random() * len(BAD_DATES))]
        elif kind == "unknown_dx_email":
            assert email is not None
            email = email.rpartition("@")[0] + "@" + UNKNOWN_EMAIL_DOMAIN
        else:  # unknown_usercom_id
            usercom_id = UNKNOWN_USERCOM_ID_BASE + index
        self.dirty_counts[kind] += 1
        return (user_id, email, usercom_id, fyno_id, full_name, country, signup_date, churn_score, override)

    def _long_name(self, full_name: str) -> str:
        """The user's name followed by a run of further given names, cut to 300-400 characters in all."""
        rand = self._dirt_rng.random
        length = LONG_NAME_MIN + int(rand() * (LONG_NAME_MAX - LONG_NAME_MIN + 1))
        parts = [full_name]
        size = len(full_name)
        while size < length:
            name = _FIRST_NAMES[int(rand() * len(_FIRST_NAMES))][0]
            parts.append(name)
            size += len(name) + 1
        return " ".join(parts)[:length]


# --- SQL ------------------------------------------------------------------------------------------------------

_SQLITE_TABLES = (
    """CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        email TEXT,
        usercom_id INTEGER,
        fyno_distinct_id TEXT,
        full_name TEXT,
        country TEXT,
        signup_date TEXT,
        churn_score REAL,
        last_seen_override TEXT
    )""",
    """CREATE TABLE orders (
        order_id INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        product TEXT NOT NULL,
        amount NUMERIC(12, 2) NOT NULL,
        ordered_at TEXT NOT NULL
    )""",
)
# Keys come after the load in PostgreSQL: building an index once is much faster than maintaining it per row.
# DOUBLE PRECISION, not REAL, for churn_score: PostgreSQL's REAL is 4 bytes and would not read back as the
# same number SQLite returns.
_POSTGRES_TABLES = (
    """CREATE TABLE users (
        user_id TEXT NOT NULL,
        email TEXT,
        usercom_id INTEGER,
        fyno_distinct_id TEXT,
        full_name TEXT,
        country TEXT,
        signup_date DATE,
        churn_score DOUBLE PRECISION,
        last_seen_override TEXT
    )""",
    """CREATE TABLE orders (
        order_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        product TEXT NOT NULL,
        amount NUMERIC(12, 2) NOT NULL,
        ordered_at TIMESTAMP NOT NULL
    )""",
)
_POSTGRES_KEYS = (
    "ALTER TABLE users ADD PRIMARY KEY (user_id)",
    "ALTER TABLE orders ADD PRIMARY KEY (order_id)",
)
# DuckDB takes PostgreSQL's DDL as it is: the same types (a DECIMAL amount, a TIMESTAMP, a DATE). Only users get
# a key, after the load: orders are never looked up by order_id, and their 3 million-entry index (DuckDB's keys
# are ART indexes) would cost about 60 MB more at the final checkpoint of a 1M-user build for nothing.
_DUCKDB_TABLES = _POSTGRES_TABLES
_DUCKDB_KEYS = _POSTGRES_KEYS[:1]
# SQLite's index covers every column the view's subqueries read, so they never touch the orders table itself.
SQLITE_ORDERS_INDEX = "CREATE INDEX orders_user_id_idx ON orders (user_id, product, amount, ordered_at)"
POSTGRES_ORDERS_INDEX = "CREATE INDEX orders_user_id_idx ON orders (user_id)"


def _vip_level(lifetime_value: str) -> str:
    """The CASE that maps a (rounded) lifetime value to its VIP level, from :data:`VIP_LEVELS`."""
    branches = "".join(f"        WHEN {lifetime_value} >= {limit} THEN '{level}'\n" for limit, level in VIP_LEVELS)
    return f"CASE\n{branches}        ELSE 'none'\n    END"


_CHURN_RISK = (
    "CASE\n        WHEN u.churn_score IS NULL THEN NULL\n"
    + "".join(f"        WHEN u.churn_score >= {limit} THEN '{risk}'\n" for limit, risk in CHURN_RISKS)
    + "        ELSE 'low'\n    END"
)

# Two spellings of one view, each the shape its planner handles best. Neither groups the outer query: a grouped
# view is computed whole before an outer ``ORDER BY user_id LIMIT n`` (SQLite) or merge-joins all orders from
# the first one (PostgreSQL), which makes every keyset page of a 1M-user sync cost a full scan. Here a page, a
# lookup by user_id and a full scan are all driven by the users' primary key, one index probe per user.
# Both return the same values and types: lifetime_value is rounded to cents first (SQLite sums doubles,
# PostgreSQL numerics) then cast to DOUBLE PRECISION, so both drivers return a float; the products are sorted
# bytewise; last_purchase_date is 'YYYY-MM-DD' text, or the user's last_seen_override when there is one.

_SQLITE_LIFETIME_VALUE = "(SELECT ROUND(COALESCE(SUM(o.amount), 0), 2) FROM orders AS o WHERE o.user_id = u.user_id)"
# SQLite (3.40 ships with Python) has no LATERAL and no ORDER BY inside an aggregate: correlated scalar
# subqueries, and an ordered DISTINCT subquery to sort the products. ordered_at is 'YYYY-MM-DD HH:MM:SS' text.
SQLITE_VIEW = f"""CREATE VIEW user_attributes AS
SELECT
    u.user_id,
    u.email,
    u.usercom_id,
    u.fyno_distinct_id,
    CAST({_SQLITE_LIFETIME_VALUE} AS DOUBLE PRECISION) AS lifetime_value,
    (SELECT COUNT(*) FROM orders AS o WHERE o.user_id = u.user_id) AS order_count,
    COALESCE(
        u.last_seen_override,
        (SELECT substr(MAX(o.ordered_at), 1, 10) FROM orders AS o WHERE o.user_id = u.user_id)
    ) AS last_purchase_date,
    {_vip_level(_SQLITE_LIFETIME_VALUE)} AS vip_level,
    (
        SELECT group_concat(p.product, ',')
        FROM (SELECT DISTINCT o.product FROM orders AS o WHERE o.user_id = u.user_id ORDER BY o.product) AS p
    ) AS products_ordered,
    {_CHURN_RISK} AS churn_risk,
    u.country,
    u.full_name
FROM users AS u"""

# PostgreSQL aggregates each user's orders once in a LATERAL subquery. to_char, not a cast to text, because a
# cast follows the session's DateStyle; COLLATE "C" sorts bytewise, as SQLite does, whatever the locale.
POSTGRES_VIEW = f"""CREATE VIEW user_attributes AS
SELECT
    u.user_id,
    u.email,
    u.usercom_id,
    u.fyno_distinct_id,
    CAST(a.lifetime_value AS DOUBLE PRECISION) AS lifetime_value,
    a.order_count,
    COALESCE(u.last_seen_override, a.last_purchase_date) AS last_purchase_date,
    {_vip_level("a.lifetime_value")} AS vip_level,
    a.products_ordered,
    {_CHURN_RISK} AS churn_risk,
    u.country,
    u.full_name
FROM users AS u
CROSS JOIN LATERAL (
    SELECT
        ROUND(COALESCE(SUM(o.amount), 0), 2) AS lifetime_value,
        COUNT(*) AS order_count,
        to_char(MAX(o.ordered_at), 'YYYY-MM-DD') AS last_purchase_date,
        string_agg(DISTINCT o.product COLLATE "C", ',' ORDER BY o.product COLLATE "C") AS products_ordered
    FROM orders AS o
    WHERE o.user_id = u.user_id
) AS a"""

# DuckDB is columnar and joins by hashing: one GROUP BY over the orders, joined to the users, is its natural
# plan. A keyset page (``WHERE user_id >= ? AND user_id < ?``) is pushed through the join into both scans, and
# since rows are stored in user order, the orders' min/max zone maps skip every row group outside the page.
# Types and values are PostgreSQL's: DECIMAL sums rounded to cents then cast to DOUBLE, strftime (not a cast)
# for the date, and the default binary collation sorts the products bytewise.
DUCKDB_VIEW = f"""CREATE VIEW user_attributes AS
SELECT
    u.user_id,
    u.email,
    u.usercom_id,
    u.fyno_distinct_id,
    CAST(COALESCE(a.lifetime_value, 0) AS DOUBLE) AS lifetime_value,
    COALESCE(a.order_count, 0) AS order_count,
    COALESCE(u.last_seen_override, a.last_purchase_date) AS last_purchase_date,
    {_vip_level("COALESCE(a.lifetime_value, 0)")} AS vip_level,
    a.products_ordered,
    {_CHURN_RISK} AS churn_risk,
    u.country,
    u.full_name
FROM users AS u
LEFT JOIN (
    SELECT
        o.user_id,
        ROUND(SUM(o.amount), 2) AS lifetime_value,
        COUNT(*) AS order_count,
        strftime(MAX(o.ordered_at), '%Y-%m-%d') AS last_purchase_date,
        string_agg(DISTINCT o.product, ',' ORDER BY o.product) AS products_ordered
    FROM orders AS o
    GROUP BY o.user_id
) AS a ON a.user_id = u.user_id"""

_DROP_ORDER = ("user_attributes", "orders", "users")


# --- targets --------------------------------------------------------------------------------------------------


def is_postgres_target(target: str) -> bool:
    """Whether ``target`` is a PostgreSQL URL (``postgresql://``, ``postgres://``, ``postgresql+psycopg2://``)."""
    return urlsplit(target).scheme.lower() in _POSTGRES_SCHEMES if "://" in target else False


def is_duckdb_target(target: str) -> bool:
    """Whether ``target`` is a DuckDB file: a ``duckdb:///path`` URL, or a plain path ending in ``.duckdb``."""
    if "://" in target:
        return urlsplit(target).scheme.lower() == "duckdb"
    return target.lower().endswith(_DUCKDB_SUFFIX)


def duckdb_path(target: str) -> str:
    """The file path of a DuckDB target: a path ending in ``.duckdb``, or a ``duckdb:///path`` URL.

    As for SQLite, and as in the DuckDB hook's own URI, ``duckdb:///demo.duckdb`` is relative and
    ``duckdb:////tmp/demo.duckdb`` absolute.
    """
    if target.lower().startswith(_DUCKDB_URL_PREFIX):
        path = target[len(_DUCKDB_URL_PREFIX) :]
    elif "://" in target:
        raise ValueError(f"not a DuckDB target (expected a path or duckdb:///path): {redact_target(target)}")
    else:
        path = target
    if not path:
        raise ValueError("empty DuckDB path")
    return path


def sqlite_path(target: str) -> str:
    """The file path of a SQLite target: a plain path, or a SQLAlchemy-style ``sqlite:///path`` URL.

    ``sqlite:///demo.db`` is relative and ``sqlite:////tmp/demo.db`` absolute, as in SQLAlchemy (and so in
    Airflow connection strings). Any other URL is refused rather than mistaken for a file name.
    """
    if target.startswith("sqlite:///"):
        path = target[len("sqlite:///") :]
    elif "://" in target:
        raise ValueError(f"not a SQLite target (expected a path or sqlite:///path): {redact_target(target)}")
    else:
        path = target
    if not path:
        raise ValueError("empty SQLite path")
    return path


def redact_target(target: str) -> str:
    """``target`` without its password (in the user part or a ``password=`` parameter), safe to print or log.

    Only those two pieces are cut out; the rest stays byte for byte (``urlunsplit`` would, for one, turn
    ``sqlite:////abs/path`` into ``sqlite://abs/path``).
    """
    match = _URL_RE.fullmatch(target)
    if match is None:
        return target
    authority = match["authority"]
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        authority = f"{userinfo.partition(':')[0]}@{hostport}"
    query = match["query"]
    if query is not None:
        kept = "&".join(p for p in query[1:].split("&") if p and p.partition("=")[0].lower() != "password")
        query = f"?{kept}" if kept else ""
    return f"{match['scheme']}://{authority}{match['path']}{query or ''}{match['fragment'] or ''}"


def _libpq_dsn(target: str) -> str:
    """The URL psycopg2 (libpq) accepts: SQLAlchemy's ``+driver`` suffix removed."""
    scheme, sep, rest = target.partition("://")
    return f"postgresql{sep}{rest}" if "+" in scheme else target


# --- builders -------------------------------------------------------------------------------------------------


def build_warehouse(
    target: str,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    dirty: bool = True,
    *,
    schema: str = DEFAULT_SCHEMA,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Drop and recreate ``users``, ``orders`` and the ``user_attributes`` view in ``target``; return a summary.

    ``target`` is a SQLite file path (or ``sqlite:///path``), a DuckDB file (a path ending in ``.duckdb``, or
    ``duckdb:///path``) or a PostgreSQL URL; in PostgreSQL the objects go into ``schema`` (created if missing; a
    previous ``user_attributes``, ``orders`` or ``users`` there is dropped with CASCADE, so keep the schema for
    the demo), in DuckDB into the file's default schema ``main``. Other objects in the file or schema are left
    alone. The whole build is one transaction. On SQLite it runs without a journal for speed, so a build killed
    half-way can leave the file unusable: delete it and build again. A DuckDB file is locked by the process that
    has it open: a build fails (``WarehouseError``) while another process, such as a running sync, holds it.

    The summary is ``{"users": n, "orders": n, "dirty": {kind: count}, "target": target without password}``;
    ``dirty`` has every kind of :data:`DIRTY_KINDS`, all zero when ``dirty`` is false.
    """
    if users < 0:
        raise ValueError(f"users must be >= 0, got {users}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    generator = _RowGenerator(users, seed, dirty)
    if is_postgres_target(target):
        if not _SCHEMA_RE.fullmatch(schema):
            raise ValueError(f"schema must be a plain identifier of at most 63 characters, got {schema!r}")
        _build_postgres(_libpq_dsn(target), schema, generator, chunk_size)
    elif is_duckdb_target(target):
        _build_duckdb(duckdb_path(target), generator, chunk_size)
    else:
        _build_sqlite(sqlite_path(target), generator, chunk_size)
    return {
        "users": users,
        "orders": generator.orders_generated,
        "dirty": dict(generator.dirty_counts),
        "target": redact_target(target),
    }


def _build_sqlite(path: str, generator: _RowGenerator, chunk_size: int) -> None:
    """Load the rows with ``executemany`` per chunk inside one transaction, journal and fsync off."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise WarehouseError(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        # No rollback journal and no fsync: a demo file is rebuilt, not recovered, and this halves the time.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        # A bounded page cache, and the index sort spilling to temp files rather than RAM: memory stays flat
        # (about 110 MB) at any size, for the same speed as a 128 MiB cache with in-memory temp storage.
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB
        conn.execute("BEGIN")
        existing = dict(
            conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name IN (?, ?, ?)",
                _DROP_ORDER,
            ).fetchall()
        )
        for name in _DROP_ORDER:
            if name in existing:
                conn.execute(f'DROP {"VIEW" if existing[name] == "view" else "TABLE"} "{name}"')
        for ddl in _SQLITE_TABLES:
            conn.execute(ddl)
        insert_users = f"INSERT INTO users ({', '.join(USERS_COLUMNS)}) VALUES ({', '.join('?' * len(USERS_COLUMNS))})"
        insert_orders = (
            f"INSERT INTO orders ({', '.join(ORDERS_COLUMNS)}) VALUES ({', '.join('?' * len(ORDERS_COLUMNS))})"
        )
        for chunk in generator.chunks(chunk_size):
            conn.executemany(insert_users, chunk.users)
            conn.executemany(insert_orders, chunk.orders)
        conn.execute(SQLITE_ORDERS_INDEX)
        conn.execute(SQLITE_VIEW)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise WarehouseError(f"building the SQLite warehouse in {path} failed: {exc}") from exc
    finally:
        conn.close()


def _build_postgres(dsn: str, schema: str, generator: _RowGenerator, chunk_size: int) -> None:
    """Load the rows with ``COPY ... FROM STDIN`` (CSV) per chunk inside one transaction, then add the keys."""
    import psycopg2
    from psycopg2 import sql

    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.Error as exc:
        raise WarehouseError(f"cannot connect to {redact_target(dsn)}: {exc}".strip()) from exc
    try:
        with conn, conn.cursor() as cur:  # commits on success, rolls back on any exception
            ident = sql.Identifier(schema)
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            # Unqualified names below resolve to the demo schema; the view binds to these tables for good.
            cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(
                "SELECT c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = ANY(%s)",
                (schema, list(_DROP_ORDER)),
            )
            existing = dict(cur.fetchall())
            kinds = {"v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
            for name in _DROP_ORDER:
                if name in existing:
                    kind = kinds.get(existing[name], "TABLE")
                    cur.execute(sql.SQL(f"DROP {kind} IF EXISTS {{}}.{{}} CASCADE").format(ident, sql.Identifier(name)))
            for ddl in _POSTGRES_TABLES:
                cur.execute(ddl)
            copy_users = f"COPY users ({', '.join(USERS_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
            copy_orders = f"COPY orders ({', '.join(ORDERS_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
            for chunk in generator.chunks(chunk_size):
                cur.copy_expert(copy_users, _csv_buffer(chunk.users))
                if chunk.orders:
                    cur.copy_expert(copy_orders, _csv_buffer(chunk.orders))
            for statement in (*_POSTGRES_KEYS, POSTGRES_ORDERS_INDEX, POSTGRES_VIEW, "ANALYZE users", "ANALYZE orders"):
                cur.execute(statement)
    except psycopg2.Error as exc:
        raise WarehouseError(f"building the PostgreSQL warehouse in schema {schema} failed: {exc}".strip()) from exc
    finally:
        conn.close()


def _build_duckdb(path: str, generator: _RowGenerator, chunk_size: int) -> None:
    """Load the rows with ``COPY ... FROM`` a temporary CSV file per :data:`DUCKDB_FLUSH_USERS` users, in one
    transaction, then add the users' key and the view.

    DuckDB's ``executemany`` runs one statement per row (about 1 ms each: an hour for 1M users), and its fast
    paths from Python (pandas, Arrow) would add a dependency; CSV written by the ``csv`` module and parsed by
    ``COPY`` costs less than generating the rows, and needs nothing.
    """
    import duckdb

    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(path)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot open DuckDB database {path}: {exc}") from exc
    try:
        with tempfile.TemporaryDirectory(prefix="userattrs-duckdb-") as tmp:
            conn.execute("BEGIN TRANSACTION")
            existing = dict(
                conn.execute(
                    "SELECT table_name, table_type FROM information_schema.tables"
                    " WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name IN (?, ?, ?)",
                    list(_DROP_ORDER),
                ).fetchall()
            )
            for name in _DROP_ORDER:
                if name in existing:
                    conn.execute(f'DROP {"VIEW" if existing[name] == "VIEW" else "TABLE"} "{name}"')
            for ddl in _DUCKDB_TABLES:
                conn.execute(ddl)
            files = {"users": Path(tmp, "users.csv"), "orders": Path(tmp, "orders.csv")}
            quoted = {table: "'" + str(file).replace("'", "''") + "'" for table, file in files.items()}
            columns = {"users": USERS_COLUMNS, "orders": ORDERS_COLUMNS}
            pending = 0

            def flush() -> None:
                for table, file in files.items():
                    if file.stat().st_size:
                        # Column types come from the table; the dialect is the csv module's, declared in full.
                        conn.execute(
                            f"COPY {table} ({', '.join(columns[table])}) FROM {quoted[table]}"
                            " (FORMAT csv, HEADER false, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULL '')"
                        )
                    file.write_bytes(b"")

            for file in files.values():
                file.write_bytes(b"")
            for chunk in generator.chunks(chunk_size):
                for table, rows in (("users", chunk.users), ("orders", chunk.orders)):
                    with files[table].open("a", encoding="utf-8", newline="") as out:
                        csv.writer(out, lineterminator="\n").writerows(rows)
                pending += len(chunk.users)
                if pending >= DUCKDB_FLUSH_USERS:
                    flush()
                    pending = 0
            flush()
            for statement in (*_DUCKDB_KEYS, DUCKDB_VIEW):
                conn.execute(statement)
            conn.execute("COMMIT")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise WarehouseError(f"building the DuckDB warehouse in {path} failed: {exc}") from exc
    finally:
        conn.close()


def _csv_buffer(rows: Sequence[tuple[Any, ...]]) -> io.StringIO:
    """Rows as CSV for COPY: ``None`` becomes an empty unquoted field, which CSV COPY reads as NULL.

    No demo value is an empty string, so the two cannot be confused.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    return buffer


# --- command line ---------------------------------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Build the warehouse from the command line and print the summary as JSON; 1 when the build fails."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_userattrs.demo.warehouse",
        description=(
            "Build the deterministic demo warehouse (users, orders, user_attributes) in SQLite, DuckDB or PostgreSQL."
        ),
    )
    parser.add_argument(
        "--target",
        required=True,
        help="SQLite file path or sqlite:///path, DuckDB file path ending in .duckdb or duckdb:///path, postgresql://...",
    )
    parser.add_argument("--users", type=_non_negative_int, default=DEFAULT_USERS, help="number of users")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed; same seed, same data")
    parser.add_argument("--clean", action="store_true", help="no dirty rows")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="PostgreSQL schema (ignored for SQLite and DuckDB)")
    args = parser.parse_args(argv)
    try:
        summary = build_warehouse(args.target, args.users, args.seed, not args.clean, schema=args.schema)
    except (ValueError, WarehouseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
