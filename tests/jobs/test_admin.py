"""The jobs and users admin: what staff see, and that their changes go through the services."""

import re
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs import storage
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory
from tests.helpers.clock import ago

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")


def change_url(job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


def listed(admin_client, **query) -> set[str]:
    """The ids of the jobs on the changelist for this query."""
    response = admin_client.get(CHANGELIST, query)
    assert response.status_code == 200
    return {str(job.pk) for job in response.context["cl"].result_list}


def test_the_changelist_shows_both_status_words_the_owner_and_a_truncated_prompt(admin_client):
    owner = UserFactory(email="ada@example.com")
    job = JobFactory(
        failed=True,
        user=owner,
        prompt="a " + "very " * 30 + "long prompt",
        result_glb="results/mug.glb",
    )

    html = admin_client.get(CHANGELIST).content.decode()

    assert str(job.pk)[:8] in html
    assert '<td class="field-api_status">FAIL</td>' in html
    assert '<td class="field-internal_state">failed</td>' in html
    assert "ada@example.com" in html
    assert "long prompt" not in html and "a very very" in html
    assert re.search(
        r'<a href="[^"]*results/mug\.glb[^"]*" target="_blank" rel="noopener">GLB</a>', html
    )


def test_search_finds_jobs_by_id_prompt_and_owner_email(admin_client):
    mug = JobFactory(prompt="a ceramic mug", user=UserFactory(email="mug@example.com"))
    boat = JobFactory(prompt="a wooden boat", user=UserFactory(email="boat@example.com"))

    assert listed(admin_client, q=str(mug.pk)) == {str(mug.pk)}
    assert listed(admin_client, q=str(boat.pk)[:8]) == {str(boat.pk)}
    assert listed(admin_client, q="wooden") == {str(boat.pk)}
    assert listed(admin_client, q="mug@example.com") == {str(mug.pk)}


def test_filters_by_state_kind_and_date(admin_client):
    failed = JobFactory(failed=True)
    preview = JobFactory(kind=JobKind.PREVIEW)
    old = JobFactory()
    Job.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(days=400))

    assert listed(admin_client, state__exact="failed") == {str(failed.pk)}
    assert listed(admin_client, kind__exact="text-to-image") == {str(preview.pk)}
    assert str(old.pk) not in listed(admin_client, created_at__year=str(failed.created_at.year))
    assert listed(admin_client, created_at__year=str(old.created_at.year - 1)) == {str(old.pk)}


def test_the_change_page_shows_the_run_the_error_and_the_preview(admin_client):
    job = JobFactory(failed=True, seed=987654, preview_image="previews/mug.png")

    html = admin_client.get(change_url(job)).content.decode()

    for shown in ("CUDA out of memory", "GPU_OUT_OF_MEMORY", "gpu@host", "987654", "120.0"):
        assert shown in html
    assert re.search(r'<div class="readonly">40</div>', html)  # progress
    assert re.search(r'<div class="readonly">2</div>', html)  # attempts
    assert re.search(r'<img src="[^"]*previews/mug\.png[^"]*" alt="preview"', html)
    assert re.search(r'<a href="[^"]*previews/mug\.png[^"]*" target="_blank"', html)


def test_the_change_page_shows_each_stage_and_step_s_time_and_the_share_of_model_calls(
    admin_client,
):
    runs = [
        {"stage": "text_to_image", "worker": "gpu@host", "started": 1764633600.0, "seconds": 1.75},
        {"stage": "prepare", "worker": "cpu@host", "started": 1764633601.8, "seconds": 0.3},
    ]
    job = JobFactory(
        failed=True,
        step_seconds={"upload": 1.25, "cut_out": 0.25, "text_to_image": 1.5, "image_to_3d": 2.0},
        stage_runs=runs,
    )

    html = admin_client.get(change_url(job)).content.decode()

    assert "text_to_image 1.75 s on gpu@host · prepare 0.30 s on cpu@host" in html
    assert "text_to_image 1.50 s · cut_out 0.25 s · image_to_3d 2.00 s · upload 1.25 s" in html
    assert "model calls 70% of 5.00 s" in html


def test_the_change_form_renames_and_nothing_else(admin_client):
    job = JobFactory(running=True, started_at=ago(minutes=1), name="old name")
    Job.objects.filter(pk=job.pk).update(progress=55)  # the pipeline moved on since the page loaded

    response = admin_client.post(
        change_url(job), {"name": "new name", "progress": 0, "state": "failed"}
    )

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.name, job.progress, job.state) == ("new name", 55, JobState.PROCESSING)


def test_inline_rename_from_the_changelist(admin_client):
    job = JobFactory(name="before")

    response = admin_client.post(
        CHANGELIST,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(job.pk),
            "form-0-name": "after",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    assert Job.objects.get(pk=job.pk).name == "after"


def run_action(admin_client, action: str, *jobs) -> str:
    response = admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(job.pk) for job in jobs]},
        follow=True,
    )
    assert response.status_code == 200
    return " ".join(str(message) for message in response.context["messages"])


def test_the_requeue_action_requeues_and_refuses_running_jobs_that_are_not_stuck(
    admin_client, enqueued, django_capture_on_commit_callbacks
):
    failed = JobFactory(failed=True)
    busy = JobFactory(running=True, started_at=ago(minutes=2))

    with django_capture_on_commit_callbacks(execute=True):
        message = run_action(admin_client, "requeue", failed, busy)

    assert sorted(message.split("; ")) == ["1 refused: running and not stuck", "1 requeued"]
    failed.refresh_from_db()
    assert (failed.state, failed.progress, failed.error_code, failed.attempts) == (
        JobState.PENDING,
        0,
        None,
        2,
    )
    assert Job.objects.get(pk=busy.pk).state == JobState.PROCESSING
    assert enqueued == [str(failed.pk)]


def test_the_cancel_action(admin_client):
    waiting, busy = JobFactory(), JobFactory(running=True, started_at=ago(minutes=2))

    message = run_action(admin_client, "cancel", waiting, busy)

    assert sorted(message.split("; ")) == ["1 asked to stop", "1 cancelled"]
    assert Job.objects.get(pk=waiting.pk).state == JobState.CANCELLED
    assert Job.objects.get(pk=busy.pk).cancel_requested is True


def stored_job(**fields) -> Job:
    return JobFactory(
        state=JobState.COMPLETED,
        result_glb=storage.save("results", "mug.glb", b"glTF"),
        preview_image=storage.save("previews", "mug.png", b"png"),
        **fields,
    )


def test_deleting_a_job_removes_its_files(admin_client, django_capture_on_commit_callbacks):
    job = stored_job()
    files = [job.result_glb, job.preview_image]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:jobs_job_delete", args=[job.pk]), {"post": "yes"}
        )

    assert response.status_code == 302
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not any(default_storage.exists(name) for name in files)


def test_deleting_selected_jobs_removes_their_files(
    admin_client, django_capture_on_commit_callbacks
):
    jobs = [stored_job(), stored_job()]
    files = [name for job in jobs for name in (job.result_glb, job.preview_image)]

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            CHANGELIST,
            {
                "action": "delete_selected",
                "_selected_action": [str(job.pk) for job in jobs],
                "post": "yes",
            },
        )

    assert not Job.objects.filter(pk__in=[job.pk for job in jobs]).exists()
    assert not any(default_storage.exists(name) for name in files)


def test_jobs_cannot_be_added_from_the_admin(admin_client):
    assert admin_client.get(reverse("admin:jobs_job_add")).status_code == 403


def test_the_users_list_shows_profiles_and_job_counts_and_searches_by_id_and_email(admin_client):
    ada = UserFactory(email="ada@example.com", is_staff=True)
    UserFactory(email="grace@example.com")
    JobFactory.create_batch(3, user=ada)
    changelist = reverse("admin:accounts_user_changelist")

    html = admin_client.get(changelist).content.decode()
    assert "ada@example.com" in html and "grace@example.com" in html
    link = reverse("admin:jobs_job_changelist") + f"?user__id__exact={ada.pk}"
    assert f'<a href="{link}">3</a>' in html

    by_email = admin_client.get(changelist, {"q": "grace@"}).context["cl"].result_list
    by_id = admin_client.get(changelist, {"q": ada.pk}).context["cl"].result_list
    assert [user.email for user in by_email] == ["grace@example.com"]
    assert [user.pk for user in by_id] == [ada.pk]
    assert len(listed(admin_client, user__id__exact=ada.pk)) == 3


def test_a_users_page_renders_and_users_cannot_be_deleted_here(admin_client):
    ada = UserFactory()

    assert admin_client.get(reverse("admin:accounts_user_change", args=[ada.pk])).status_code == 200
    assert admin_client.get(reverse("admin:accounts_user_delete", args=[ada.pk])).status_code == 403
