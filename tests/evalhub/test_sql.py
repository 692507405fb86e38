"""The hot path's SQL helpers: values prepared and read back as the ORM does, on either
database, and prepared statements on PostgreSQL only where the settings allow them."""

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from annotate.models import Judgment
from evalhub import sql
from tests.factories import UserFactory


def test_a_row_becomes_the_model_the_orm_would_build(db):
    """model_from_row applies the ORM's converters: the user reads back equal, field by field."""
    alice = UserFactory(username="alice", email="alice@example.org")
    row = sql.fetch_one(
        f"SELECT {sql.columns(User, 'u')} FROM auth_user u WHERE u.id = %(id)s", {"id": alice.pk}
    )
    built = sql.model_from_row(User, row)
    loaded = User.objects.get(pk=alice.pk)
    for field in User._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(loaded, field.attname), field.name
    assert not built._state.adding


def test_values_go_in_as_the_field_stores_them_and_times_come_back_aware(db):
    """A UUID and an aware datetime round-trip through raw SQL on this database."""
    moment = datetime(2026, 11, 24, 12, 30, 15, 123456, tzinfo=UTC)
    client_id = uuid.uuid4()
    stored_id, stored_time = sql.fetch_one(
        "SELECT %(id)s, %(at)s",
        {
            "id": sql.db_value(Judgment, "client_id", client_id),
            "at": sql.db_value(Judgment, "fetched_at", moment),
        },
    )
    assert uuid.UUID(str(stored_id)) == client_id
    assert sql.aware(stored_time) == moment


def test_database_errors_arrive_as_djangos(db):
    """A constraint violation raised through the helpers is django.db's IntegrityError."""
    UserFactory(username="taken")
    with pytest.raises(IntegrityError):
        sql.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,"
            " is_staff, is_active, date_joined) VALUES ('', false, 'taken', '', '', '', false, true,"
            " %(now)s)",
            {"now": sql.db_value(User, "date_joined", datetime.now(UTC))},
        )


def test_statements_are_prepared_on_postgresql_only_when_allowed(db):
    """With psycopg's threshold set a statement is prepared on its connection; without, not."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL matter")

    def prepared(marker: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{marker}%"]
            )
            return cursor.fetchone()[0]

    sql.fetch_one("SELECT 1 AS prepared_one WHERE %(x)s > 0", {"x": 1})
    assert prepared("prepared_one") == 1
    threshold, connection.connection.prepare_threshold = connection.connection.prepare_threshold, None
    try:
        sql.fetch_one("SELECT 1 AS not_prepared WHERE %(x)s > 0", {"x": 1})
    finally:
        connection.connection.prepare_threshold = threshold
    assert prepared("not_prepared") == 0


def test_statements_go_through_djangos_cursor_wrappers(db):
    """Execute wrappers see them and query capture logs their text, on both databases."""
    seen = []

    def wrapper(execute, sql_text, params, many, context):
        seen.append(sql_text)
        return execute(sql_text, params, many, context)

    with connection.execute_wrapper(wrapper), CaptureQueriesContext(connection) as captured:
        assert sql.fetch_one("SELECT %(x)s AS wrapped_one", {"x": 7})[0] == 7
    assert [text for text in seen if "wrapped_one" in text]
    assert [q for q in captured.captured_queries if "wrapped_one" in q["sql"]]
