"""Changes pushed to the web processes as they commit (jobs.changes, migration 0010's trigger)."""

import importlib
import queue
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.utils import timezone

from jobs import changes
from jobs.models import Job
from tests.factories import JobFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's LISTEN/NOTIFY"),
]

NOTICE_SECONDS = 10  # a notice normally arrives within a millisecond; a busy machine is slower
QUIET_SECONDS = 0.5


@pytest.fixture
def listener():
    received = queue.Queue()
    listenings = queue.Queue()
    listener = changes.ChangeListener(
        on_changes=lambda ids: [received.put(job_id) for job_id in ids],
        on_listening=lambda: listenings.put(True),
    )
    listener.received, listener.listenings = received, listenings
    listener.start()
    assert listenings.get(timeout=NOTICE_SECONDS)
    yield listener
    listener.stop()


def next_notice(listener) -> str:
    return listener.received.get(timeout=NOTICE_SECONDS)


def assert_quiet(listener) -> None:
    with pytest.raises(queue.Empty):
        listener.received.get(timeout=QUIET_SECONDS)


def test_the_trigger_sends_on_the_channel_the_listener_listens_to():
    migration = importlib.import_module("jobs.migrations.0010_job_notify")
    assert migration.CHANNEL == changes.CHANNEL


def test_a_created_changed_and_deleted_job_each_reach_the_listener(listener):
    job = JobFactory()
    assert next_notice(listener) == str(job.pk)
    Job.objects.filter(pk=job.pk).update(name="renamed", updated_at=timezone.now())
    assert next_notice(listener) == str(job.pk)
    Job.objects.filter(pk=job.pk).delete()
    assert next_notice(listener) == str(job.pk)
    assert_quiet(listener)


def test_a_bulk_update_sends_every_job_it_changed(listener):
    jobs = JobFactory.create_batch(3)
    assert {next_notice(listener) for _ in jobs} == {str(job.pk) for job in jobs}
    Job.objects.all().update(message="Paused by staff", updated_at=timezone.now())
    assert {next_notice(listener) for _ in jobs} == {str(job.pk) for job in jobs}


def test_what_no_client_sees_and_what_is_rolled_back_send_nothing(listener):
    job = JobFactory()
    assert next_notice(listener) == str(job.pk)
    # A heartbeat leaves updated_at as it was.
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    with pytest.raises(RuntimeError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(name="never", updated_at=timezone.now())
        raise RuntimeError("rolled back")
    assert_quiet(listener)
    assert Job.objects.get(pk=job.pk).name != "never"


def test_a_notice_leaves_only_when_its_transaction_commits(listener):
    job = JobFactory()
    assert next_notice(listener) == str(job.pk)
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(name="committed", updated_at=timezone.now())
        assert_quiet(listener)
    assert next_notice(listener) == str(job.pk)


def test_a_dropped_connection_is_listened_on_again_and_reported_before_new_changes(listener):
    dropped_pid = listener.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped_pid])
    # on_listening again: the process re-reads what it follows, since notices were lost.
    assert listener.listenings.get(timeout=NOTICE_SECONDS + changes.RECONNECT_SECONDS)
    assert listener.backend_pid != dropped_pid
    job = JobFactory()
    assert next_notice(listener) == str(job.pk)


def test_version_checks_from_many_threads_each_get_their_job_as_stored_now():
    jobs = JobFactory.create_batch(20)
    checks = changes.VersionChecks()
    try:
        with ThreadPoolExecutor(8) as pool:
            versions = list(pool.map(checks.version, [str(job.pk) for job in jobs] * 5))
        assert versions == [job.updated_at for job in jobs] * 5
        written = timezone.now()
        Job.objects.filter(pk=jobs[0].pk).update(updated_at=written)
        assert checks.version(str(jobs[0].pk)) == written
        Job.objects.filter(pk=jobs[0].pk).delete()
        assert checks.version(str(jobs[0].pk)) is None
    finally:
        checks.close()
