"""A user's history in pages (selectors.history_page): complete, disjoint, in the unpaged order,
and stable while jobs are made and deleted between two pages."""

import base64
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import selectors
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db


def all_pages(user, limit, **filters) -> list[list[Job]]:
    pages, cursor = [], None
    while True:
        page = selectors.history_page(user, limit=limit, cursor=cursor, **filters)
        pages.append(page.jobs)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


@pytest.fixture
def owner(db):
    """A user with 25 jobs, some of them made at the very same moment (ties on created_at)."""
    user = UserFactory()
    moment = timezone.now() - timedelta(hours=1)
    for n in range(25):
        job = JobFactory(user=user)
        at = moment + timedelta(seconds=n // 3)  # three jobs per second: ties
        Job.objects.filter(pk=job.pk).update(created_at=at)
    JobFactory(user=UserFactory())  # someone else's
    return user


@pytest.mark.parametrize("limit", [1, 7, 10, 25, 100])
def test_pages_are_complete_disjoint_and_in_the_unpaged_order(owner, limit):
    pages = all_pages(owner, limit)

    paged = [job.pk for page in pages for job in page]
    unpaged = list(
        selectors.history(owner).order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    assert paged == unpaged and len(paged) == 25
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert len(pages) == -(-25 // limit)


def test_a_cursor_is_null_on_the_last_page_and_url_safe_elsewhere(owner):
    first = selectors.history_page(owner, limit=24)
    last = selectors.history_page(owner, limit=24, cursor=first.next_cursor)

    assert re.fullmatch(r"[A-Za-z0-9_-]+", first.next_cursor)  # safe in a query string as it is
    assert [len(first.jobs), len(last.jobs), last.next_cursor] == [24, 1, None]


def test_jobs_made_and_deleted_between_pages_shift_nothing(owner):
    first = selectors.history_page(owner, limit=10)
    JobFactory.create_batch(3, user=owner)  # newer than every job paged so far
    first.jobs[-1].delete()  # the job the cursor points at
    second = selectors.history_page(owner, limit=10, cursor=first.next_cursor)
    third = selectors.history_page(owner, limit=10, cursor=second.next_cursor)

    seen = [job.pk for job in first.jobs + second.jobs + third.jobs]
    assert len(seen) == len(set(seen)) == 25
    assert third.next_cursor is None


def test_filters_by_state_and_kind(owner):
    done = list(Job.objects.filter(user=owner)[:4])
    Job.objects.filter(pk__in=[j.pk for j in done[:2]]).update(state=JobState.COMPLETED)
    Job.objects.filter(pk__in=[j.pk for j in done[2:]]).update(
        state=JobState.CANCELLED, kind=JobKind.PREVIEW
    )

    failed = [
        j for page in all_pages(owner, 1, states=selectors.states_for_status("FAIL")) for j in page
    ]
    previews = [j for page in all_pages(owner, 2, kinds=[JobKind.PREVIEW]) for j in page]
    finished_3d = selectors.history_page(
        owner, limit=10, states=[JobState.COMPLETED], kinds=[JobKind.TEXT_TO_3D]
    )

    assert {j.pk for j in failed} == {j.pk for j in previews} == {j.pk for j in done[2:]}
    assert {j.pk for j in finished_3d.jobs} == {j.pk for j in done[:2]}
    assert finished_3d.next_cursor is None


def test_an_anonymous_caller_gets_one_empty_page():
    page = selectors.history_page(None, limit=10)

    assert (page.jobs, page.next_cursor) == ([], None)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !",
        b64(b"\xff\xfe"),
        b64(b"{}"),
        b64(b"[1, 2]"),
        b64(b'["2026-01-01T00:00:00", "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11"]'),  # no zone
        b64(b'["2026-01-01T00:00:00+00:00", "not-a-uuid"]'),
        b64(b'["yesterday", "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11"]'),
        b64(b'["2026-01-01T00:00:00+00:00", "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11", 3]'),
    ],
)
def test_a_cursor_no_page_gave_out_is_refused(owner, cursor):
    with pytest.raises(selectors.InvalidCursor):
        selectors.history_page(owner, limit=10, cursor=cursor)
