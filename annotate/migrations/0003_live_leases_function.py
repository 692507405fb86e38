"""annotate_live_leases(): the unexpired active leases on a task held by others, counted
with a snapshot of its own (PostgreSQL only; see annotate.assignment.LEASE_SQL).

A VOLATILE function's queries each take a fresh snapshot, so called on the row that the
calling statement has just locked, it sees every lease committed before the lock was
granted, which the calling statement's own snapshot may not.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION annotate_live_leases(p_task bigint, p_besides bigint, p_at timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN (
    SELECT COUNT(*) FROM annotate_lease
    WHERE task_id = p_task AND state = 'active' AND expires_at > p_at AND annotator_id <> p_besides
  );
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS annotate_live_leases(bigint, bigint, timestamptz)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("annotate", "0002_queue_order_index")]

    operations = [migrations.RunPython(create, drop)]
