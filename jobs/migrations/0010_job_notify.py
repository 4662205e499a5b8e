"""Every committed change to a job is pushed to the web processes (jobs.changes): a trigger sends
the job's id on a PostgreSQL notification channel from inside the writing transaction, so the
notice goes out exactly when the change commits, whoever wrote it (services, workers, the admin,
a bulk UPDATE, plain SQL). Updates that leave ``updated_at`` alone (heartbeats, the broker's
confirmation, a stored download) change nothing a client sees and send nothing. Other databases
(SQLite: the embedded defaults) have no such channel; their web processes poll."""

from django.db import migrations

# jobs.changes.CHANNEL (tests/jobs/test_changes.py checks that they agree).
CHANNEL = "hydrilla_job_changes"

CREATE = f"""
CREATE FUNCTION jobs_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', (CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_job_notify_insert_delete AFTER INSERT OR DELETE ON jobs_job
    FOR EACH ROW EXECUTE FUNCTION jobs_job_notify();
CREATE TRIGGER jobs_job_notify_update AFTER UPDATE ON jobs_job
    FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION jobs_job_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS jobs_job_notify_update ON jobs_job;
DROP TRIGGER IF EXISTS jobs_job_notify_insert_delete ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_notify();
"""


def on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("jobs", "0009_catalogue")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
