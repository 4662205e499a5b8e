"""Per-caller limits: each answers 429 with the JSON error and Retry-After, and writes nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts import api_keys
from jobs.models import Job, JobState, Upload
from jobs.services import shared
from tests.factories import JobFactory, UserFactory
from tests.helpers.images import png

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def not_published(monkeypatch):
    monkeypatch.setattr(shared, "enqueue", lambda job: None)


def assert_refused(response, message_part):
    assert response.status_code == 429, response.content
    assert set(response.json()) == {"error"} and message_part in response.json()["error"]
    assert int(response["Retry-After"]) > 0


def test_submissions_per_user_are_limited_per_minute(auth_client, user, settings):
    settings.SUBMIT_RATE_USER = "3/min"
    client = auth_client(user)
    for n in range(3):
        assert (
            client.post("/api/3d/generate", {"prompt": f"a chair {n}"}, format="json").status_code
            == 200
        )

    assert_refused(
        client.post("/api/3d/generate", {"prompt": "one more"}, format="json"), "throttled"
    )
    assert Job.objects.count() == 3
    # Another user from the same address is not held back by this one's limit.
    assert (
        auth_client(UserFactory())
        .post("/api/3d/generate", {"prompt": "mine"}, format="json")
        .status_code
        == 200
    )


def test_submissions_per_address_are_limited_whoever_signs_in(auth_client, settings):
    settings.SUBMIT_RATE_IP = "2/min"
    assert (
        auth_client(UserFactory())
        .post("/api/3d/generate", {"prompt": "a"}, format="json")
        .status_code
        == 200
    )
    assert (
        auth_client(UserFactory())
        .post("/api/3d/generate", {"prompt": "b"}, format="json")
        .status_code
        == 200
    )

    assert_refused(
        auth_client(UserFactory()).post("/api/3d/generate", {"prompt": "c"}, format="json"),
        "throttled",
    )
    assert Job.objects.count() == 2


def test_the_address_is_the_sockets_unless_a_trusted_proxy_says_otherwise(api_client, settings):
    settings.SUBMIT_RATE_IP = settings.GENERATION_SUBMIT_RATE_ANON = "1/min"
    assert (
        api_client.post("/text-to-3d", {"prompt": "a"}, REMOTE_ADDR="198.51.100.7").status_code
        == 200
    )
    # A forged X-Forwarded-For changes nothing while no proxy is trusted.
    forged = api_client.post(
        "/text-to-3d",
        {"prompt": "b"},
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert_refused(forged, "throttled")


def test_the_generation_half_takes_fewer_anonymous_submissions(
    api_client, auth_client, user, settings
):
    settings.GENERATION_SUBMIT_RATE_ANON = "2/min"
    for n in range(2):
        assert api_client.post("/text-to-3d", {"prompt": f"a lamp {n}"}).status_code == 200

    assert_refused(api_client.post("/text-to-3d", {"prompt": "a lamp"}), "throttled")
    assert_refused(
        api_client.post("/image-to-3d", {"image_url": "https://images.example.com/a.png"}),
        "throttled",
    )
    assert auth_client(user).post("/text-to-3d", {"prompt": "signed in"}).status_code == 200
    assert Job.objects.count() == 3


def test_a_setting_requires_a_token_on_the_generation_half(api_client, auth_client, user, settings):
    settings.GENERATION_API_REQUIRE_TOKEN = True
    for path, data in [
        ("/text-to-3d", {"prompt": "a"}),
        ("/text-to-image", {"prompt": "a"}),
        ("/image-to-3d", {"image_url": "https://images.example.com/a.png"}),
    ]:
        response = api_client.post(path, data)
        assert response.status_code == 401 and response.json() == {
            "error": "Authentication required"
        }
    assert Job.objects.count() == 0
    assert auth_client(user).post("/text-to-3d", {"prompt": "signed in"}).status_code == 200


def test_a_caller_may_have_so_many_jobs_waiting(auth_client, api_client, user, settings):
    settings.MAX_WAITING_JOBS_PER_CALLER = 2
    client = auth_client(user)
    JobFactory(user=user, state=JobState.COMPLETED)  # ended jobs do not count
    first = client.post("/api/3d/generate", {"prompt": "one"}, format="json").json()["jobId"]
    client.post("/api/3d/generate", {"prompt": "two"}, format="json")

    assert_refused(
        client.post("/api/3d/generate", {"prompt": "three"}, format="json"), "waiting jobs"
    )
    assert_refused(client.post("/text-to-3d", {"prompt": "three"}), "waiting jobs")
    assert Job.objects.filter(user=user).count() == 3

    client.post(f"/cancel/{first}")
    assert client.post("/api/3d/generate", {"prompt": "three"}, format="json").status_code == 200


def test_anonymous_callers_are_counted_by_address(api_client, settings):
    settings.MAX_WAITING_JOBS_PER_CALLER = 1
    assert (
        api_client.post("/text-to-3d", {"prompt": "a"}, REMOTE_ADDR="198.51.100.7").status_code
        == 200
    )
    assert_refused(
        api_client.post("/text-to-3d", {"prompt": "b"}, REMOTE_ADDR="198.51.100.7"), "waiting jobs"
    )
    assert (
        api_client.post("/text-to-3d", {"prompt": "c"}, REMOTE_ADDR="198.51.100.8").status_code
        == 200
    )
    assert Job.objects.count() == 2
    assert set(Job.objects.values_list("submitted_from", flat=True)) == {
        "198.51.100.7",
        "198.51.100.8",
    }


def test_a_refused_upload_stores_nothing(api_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.GENERATION_SUBMIT_RATE_ANON = "0/min"
    image = SimpleUploadedFile("photo.png", png(), content_type="image/png")

    assert_refused(
        api_client.post("/image-to-3d", {"image_file": image}, format="multipart"), "throttled"
    )
    assert Upload.objects.count() == 0 and not any(tmp_path.rglob("*.png"))


def test_uploads_count_as_submissions(api_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SUBMIT_RATE_IP = "1/min"
    first = api_client.post(
        "/api/3d/upload-image", {"image": SimpleUploadedFile("a.png", png())}, format="multipart"
    )
    assert first.status_code == 200

    assert_refused(
        api_client.post(
            "/api/3d/upload-image",
            {"image": SimpleUploadedFile("b.png", png())},
            format="multipart",
        ),
        "throttled",
    )
    assert Upload.objects.count() == 1


@pytest.mark.parametrize(
    "path", ["/status/{job}", "/api/3d/status/{job}", "/api/3d/history", "/queue/info"]
)
def test_a_database_that_cannot_be_reached_is_the_specs_503(auth_client, user, monkeypatch, path):
    from django.db import OperationalError

    from accounts import services as account_services
    from jobs import selectors

    job = JobFactory(user=user)

    def unreachable(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    for module, name in [
        (selectors, "get_job"),
        (selectors, "history"),
        (selectors, "queue_standings"),
        (account_services, "user_from_claims"),
    ]:
        monkeypatch.setattr(module, name, unreachable)
    response = auth_client(user).get(path.format(job=job.pk))

    assert response.status_code == 503
    assert response.json() == {"error": "External service unavailable. Please try again later."}


def test_the_body_limit_covers_the_admin_too(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    response = client.post(
        "/admin/login/",
        data=b"x",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(42 * 1024 * 1024),
    )

    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large (maximum 10 MB)"}


# --- The limits a client can read, and API keys' own -----------------------------------------


def rate_limit(response) -> tuple[int, int, int]:
    return tuple(int(response[f"RateLimit-{part}"]) for part in ("Limit", "Remaining", "Reset"))


def submit_3d(client, n=0):
    return client.post("/api/3d/generate", {"prompt": f"a chair {n}"}, format="json")


def test_submit_answers_show_the_limit_that_binds(auth_client, user, settings):
    settings.SUBMIT_RATE_USER, settings.SUBMIT_RATE_IP = "3/min", "10/min"
    client = auth_client(user)

    answers = [submit_3d(client, n) for n in range(4)]

    assert [rate_limit(r)[:2] for r in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    assert all(0 < rate_limit(r)[2] <= 60 for r in answers)
    assert answers[-1].status_code == 429
    assert rate_limit(answers[-1])[2] >= int(answers[-1]["Retry-After"]) - 1


def test_the_address_limit_binds_when_it_is_the_tighter(auth_client, settings):
    settings.SUBMIT_RATE_USER, settings.SUBMIT_RATE_IP = "5/min", "2/min"

    response = submit_3d(auth_client(UserFactory()))

    assert rate_limit(response)[:2] == (2, 1)


def test_reads_without_a_key_show_no_limits(auth_client, user):
    response = auth_client(user).get("/api/3d/history")

    assert "RateLimit-Limit" not in response


@pytest.fixture
def key_client(user):
    _, key = api_keys.create_key(user, name="server")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_an_api_key_has_its_own_submit_limit_in_place_of_the_browsers(
    auth_client, user, key_client, settings
):
    settings.SUBMIT_RATE_USER, settings.SUBMIT_RATE_IP = "1/min", "1/min"
    settings.SUBMIT_RATE_API_KEY = "2/min"

    by_key = [submit_3d(key_client, n) for n in range(3)]
    in_a_browser = submit_3d(auth_client(user), 9)

    assert [r.status_code for r in by_key] == [200, 200, 429]
    assert rate_limit(by_key[0])[:2] == (2, 1)
    assert in_a_browser.status_code == 200  # the person's own limit is untouched
    assert Job.objects.filter(user=user).count() == 3


def test_an_api_key_has_a_limit_on_every_request(key_client, settings):
    settings.API_KEY_RATE = "3/min"

    answers = [key_client.get("/api/3d/history") for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [rate_limit(r)[:2] for r in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    assert_refused(answers[-1], "throttled")
