"""Running hand-written SQL on the hot paths (annotation API, token authentication).

Every annotator request makes a handful of small indexed statements; building each one
through the ORM costs several times what the database spends on it, so those statements
are written out once (``annotate.queries``, ``evalhub.accounts.authentication``) and run
through these helpers. The same SQL runs on PostgreSQL and SQLite: values go through the
model fields' own database preparation and datetimes read back are made aware again.
Where the two differ (row locks, which SQLite does not have: it serializes writers with
IMMEDIATE transactions), the owning module picks the statement by ``connection.vendor``.
"""

from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model
from django.utils.dateparse import parse_datetime


def fetch_all(sql: str, params: dict) -> list[tuple]:
    with _cursor(sql, params) as cursor:
        return cursor.fetchall()


def fetch_one(sql: str, params: dict) -> tuple | None:
    with _cursor(sql, params) as cursor:
        return cursor.fetchone()


def execute(sql: str, params: dict) -> int:
    """Run a write; the number of rows it touched."""
    with _cursor(sql, params) as cursor:
        return cursor.rowcount


@contextmanager
def _cursor(sql: str, params: dict):
    """A cursor that has run ``sql``, through Django's cursor wrappers (execute wrappers,
    query logging, ``assertNumQueries``, database error translation).

    On PostgreSQL the statement is bound server-side, so psycopg prepares it once per
    connection where the settings allow it (``prepare_threshold`` 0: at its first run;
    None: never): planning these statements costs more than running them. Django's own
    cursors bind client-side and never prepare.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor
        return
    db.ensure_connection()
    raw = _server_binding_cursor(db.connection)
    # Not used as a context manager: leaving one would close the connection's cursor.
    cursor = _DebugWrapper(raw, db) if db.queries_logged else CursorWrapper(raw, db)
    cursor.execute(sql, params)
    yield cursor


class _DebugWrapper(CursorDebugWrapper):
    """Logs a statement as written: Django reads the executed text back from client-side
    binding, which a server-bound cursor does not have."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return super(CursorDebugWrapper, self).execute(sql, params)


def _server_binding_cursor(pg):
    """One reusable cursor per psycopg connection (making one copies its adapters)."""
    cursor = getattr(pg, "_evalhub_cursor", None)
    if cursor is None or cursor.closed:
        cursor = pg._evalhub_cursor = psycopg.Cursor(pg)
    return cursor


def columns(model: type[Model], alias: str) -> str:
    """The select list of ``model``'s concrete fields, for ``model_from_row``."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


def model_from_row(model: type[Model], values: tuple | list) -> Model:
    """An instance of ``model`` from the values of ``columns(model, …)``, converted as
    the ORM converts them (JSON text, SQLite's datetimes and booleans)."""
    converted = list(values)
    for position, col, converters in _converters(model, connection.vendor):
        for converter in converters:
            converted[position] = converter(converted[position], col, connection)
    return model.from_db(connection.alias, None, converted)


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple]:
    """(position, column, converters) of the fields that have any, per model and backend
    (converters read settings, not the connection they were taken from)."""
    found = []
    for position, field in enumerate(model._meta.concrete_fields):
        col = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if converters:
            found.append((position, col, converters))
    return found


def db_value(model: type[Model], field: str, value):
    """``value`` as the database stores ``model.field`` (UUIDs as hex text on SQLite,
    aware datetimes as naive UTC text there, JSON wrapped for psycopg)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection)


def json_value(model: type[Model], field: str, value):
    """A JSON column of ``model`` read back by raw SQL, decoded as the ORM decodes it."""
    return model._meta.get_field(field).from_db_value(value, None, connection)


def aware(value) -> datetime:
    """A datetime read back by raw SQL: SQLite hands back naive UTC text."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def one_statement_transaction():
    """What makes a statement that reads, then writes, atomic: on PostgreSQL the statement
    itself; on SQLite an IMMEDIATE transaction, whose write lock is taken before the read
    (two statements that read first would deadlock upgrading their locks)."""
    return transaction.atomic() if connection.vendor == "sqlite" else nullcontext()
