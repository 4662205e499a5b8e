"""GET /api/3d/history in pages (?limit=, ?cursor=, ?status=, ?kind=): complete and disjoint
pages, and without ``limit`` the spec's answer, unchanged."""

import pytest

from jobs.models import JobKind, JobState
from tests.factories import JobFactory, UserFactory
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db

HISTORY = "/api/3d/history"


def pages(client, **query) -> list[dict]:
    answers, cursor = [], None
    while True:
        response = client.get(HISTORY, {**query, **({"cursor": cursor} if cursor else {})})
        answers.append(assert_matches_schema(response, HISTORY))
        cursor = answers[-1]["nextCursor"]
        if cursor is None:
            return answers


def test_pages_are_complete_disjoint_and_in_the_unpaged_order(auth_client, user):
    JobFactory.create_batch(12, user=user)
    JobFactory(user=UserFactory())
    client = auth_client(user)

    answers = pages(client, limit=5)
    unpaged = assert_matches_schema(client.get(HISTORY), HISTORY)

    assert [len(answer["jobs"]) for answer in answers] == [5, 5, 2]
    paged_ids = [job["id"] for answer in answers for job in answer["jobs"]]
    assert paged_ids == [job["id"] for job in unpaged["jobs"]] and len(set(paged_ids)) == 12
    assert answers[0]["jobs"][0] == unpaged["jobs"][0]  # the same job body


def test_without_limit_the_answer_is_the_documented_one(auth_client, user):
    JobFactory(user=user)

    assert set(auth_client(user).get(HISTORY).json()) == {"jobs"}


def test_a_page_that_ends_the_history_says_so(auth_client, user):
    JobFactory.create_batch(2, user=user)

    body = auth_client(user).get(HISTORY, {"limit": 2}).json()

    assert len(body["jobs"]) == 2 and body["nextCursor"] is None


def test_filters_by_the_job_apis_status_words_and_by_kind(auth_client, user):
    done = JobFactory(user=user, state=JobState.COMPLETED)
    cancelled = JobFactory(user=user, state=JobState.CANCELLED, kind=JobKind.PREVIEW)
    failed = JobFactory(user=user, state=JobState.FAILED)
    JobFactory(user=user)  # waiting
    client = auth_client(user)

    def ids(**query):
        return {job["id"] for answer in pages(client, limit=1, **query) for job in answer["jobs"]}

    assert ids(status="DONE") == {str(done.pk)}
    assert ids(status="FAIL") == {str(cancelled.pk), str(failed.pk)}
    assert ids(status="FAIL", kind="text-to-image") == {str(cancelled.pk)}
    unpaged = client.get(HISTORY, {"status": "DONE"}).json()
    assert [job["id"] for job in unpaged["jobs"]] == [str(done.pk)]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"limit": 0}, "limit: Ensure this value is greater than or equal to 1."),
        ({"limit": 101}, "limit: Ensure this value is less than or equal to 100."),
        ({"limit": "ten"}, "limit: A valid integer is required."),
        ({"limit": 5, "cursor": "not-a-cursor"}, "Invalid cursor"),
        ({"cursor": "abc"}, "cursor needs limit"),
        ({"status": "completed"}, 'status: "completed" is not a valid choice.'),
        ({"kind": "video"}, 'kind: "video" is not a valid choice.'),
    ],
)
def test_bad_queries_are_a_400(auth_client, user, query, error):
    response = auth_client(user).get(HISTORY, query)

    assert response.status_code == 400 and response.json() == {"error": error}


def test_anonymous_callers_get_one_empty_page(api_client):
    JobFactory(user=UserFactory())

    assert api_client.get(HISTORY, {"limit": 10}).json() == {"jobs": [], "nextCursor": None}
