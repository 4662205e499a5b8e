"""Requests as an attacker sends them: a victim's session cookie from another site, and bodies no
client of ours would send. Each is refused with the spec's JSON error, and nothing is written."""

import io

import pytest
from rest_framework.test import APIClient

from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

CROSS_SITE = {"error": "Cross-site request refused: its origin is not allowed"}
FRONTEND = "http://localhost:3000"  # CORS_ALLOWED_ORIGINS' default


@pytest.fixture
def victim():
    return UserFactory()


@pytest.fixture
def browser(token_minter, victim):
    """The victim's browser: Clerk's ``__session`` cookie, sent with whatever page asks."""
    client = APIClient()
    client.cookies["__session"] = token_minter.token(victim.pk)
    return client


def changes(victim):
    """(method, path, body, what it would have done) for each cookie-borne write."""
    waiting = JobFactory(user=victim, kind=JobKind.TEXT_TO_3D, state=JobState.PENDING, name="Mine")
    return [
        ("post", "/api/3d/generate", {"prompt": "a forged mug"}),
        ("post", "/text-to-3d", {"prompt": "a forged mug"}),
        ("post", f"/cancel/{waiting.pk}", None),
        ("patch", f"/api/3d/jobs/{waiting.pk}/name", {"name": "Forged"}),
        ("delete", f"/api/3d/jobs/{waiting.pk}", None),
    ], waiting


def send(client, method, path, body, **headers):
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(path, body, format="json", **headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_REFERER": "https://evil.example/page.html"},
        {"HTTP_ORIGIN": "null"},  # a sandboxed frame or a file:// page
        {"HTTP_ORIGIN": "http://localhost:3000.evil.example"},
        {},  # neither header
    ],
    ids=["foreign origin", "foreign referer", "null origin", "look-alike origin", "no origin"],
)
def test_a_cookie_from_another_site_changes_nothing(
    browser, victim, headers, django_capture_on_commit_callbacks
):
    attempts, waiting = changes(victim)

    for method, path, body in attempts:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(browser, method, path, body, **headers)
        assert (response.status_code, response.json()) == (403, CROSS_SITE), (method, path)

    assert list(Job.objects.values_list("pk", "state", "name", "cancel_requested")) == [
        (waiting.pk, JobState.PENDING, "Mine", False)
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": FRONTEND},
        {"HTTP_REFERER": f"{FRONTEND}/studio?tab=3d"},
        {"HTTP_ORIGIN": "http://testserver"},  # the service's own pages
    ],
    ids=["frontend origin", "frontend referer", "same origin"],
)
def test_a_cookie_from_an_allowed_origin_works_as_before(browser, victim, headers):
    attempts, waiting = changes(victim)

    statuses = [
        send(browser, method, path, body, **headers).status_code for method, path, body in attempts
    ]

    assert statuses == [200] * len(attempts)
    assert not Job.objects.filter(pk=waiting.pk).exists()  # cancelled, renamed, then deleted
    assert Job.objects.filter(user=victim).count() == 2  # the two submitted jobs


def test_reading_with_the_cookie_needs_no_origin(browser, victim):
    job = JobFactory(user=victim)

    response = browser.get(f"/api/3d/status/{job.pk}", HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 200  # CORS keeps another site from reading it


def test_a_bearer_token_needs_no_origin(auth_client, victim):
    """Only script the CORS rules allow can set the header; a form cannot."""
    response = auth_client(victim).post(
        "/api/3d/generate", {"prompt": "a mug"}, format="json", HTTP_ORIGIN="https://evil.example"
    )

    assert response.status_code == 200
    assert Job.objects.filter(user=victim).count() == 1


# --- Bodies no client sends ----------------------------------------------------------------


def nested(depth: int) -> str:
    return '{"prompt": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    "path", ["/api/3d/generate", "/text-to-3d", "/text-to-image", "/api/3d/register-job"]
)
def test_json_nested_ten_thousand_deep_is_a_400(auth_client, victim, path):
    response = auth_client(victim).post(path, nested(10_000), content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": "JSON parse error - nested too deeply"}
    assert not Job.objects.exists()


def test_json_nested_within_the_decoders_reach_is_an_ordinary_field_error(auth_client, victim):
    response = auth_client(victim).post("/text-to-3d", nested(500), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("prompt: ")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/3d/generate", {"prompt": 0}),
        ("/text-to-3d", {"prompt": 0}),
        ("/text-to-image", {"prompt": 0}),
        ("/text-to-3d", {"prompt": "a mug", "user_id": 0}),
        (
            "/api/3d/register-job",
            {
                "job_id": "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11",
                "prompt": 1.5,
                "previewImageUrl": "https://images.example.com/p.png",
            },
        ),
    ],
)
def test_a_number_where_a_string_belongs_is_a_400(auth_client, victim, path, body):
    """Strict like the booleans and integers: ``0`` is not taken for ``"0"``."""
    response = auth_client(victim).post(path, body, format="json")

    assert response.status_code == 400
    [field] = [key for key, value in body.items() if not isinstance(value, str)]
    assert response.json() == {"error": f"{field}: Not a valid string."}
    assert not Job.objects.exists()


def test_a_number_is_not_a_name_either(auth_client, victim):
    job = JobFactory(user=victim, name="Kept")

    response = auth_client(victim).patch(f"/api/3d/jobs/{job.pk}/name", {"name": 0}, format="json")

    assert (response.status_code, response.json()) == (400, {"error": "name: Not a valid string."})
    job.refresh_from_db()
    assert job.name == "Kept"


MULTIPART = (
    b'--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na mug\r\n--xyz--\r\n',
    "multipart/form-data; boundary=xyz",
)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"prompt": "a mug"}', "application/json"),
        (b"prompt=a+mug", "application/x-www-form-urlencoded"),
        MULTIPART,
    ],
    ids=["json", "form", "multipart"],
)
@pytest.mark.parametrize("path", ["/text-to-3d", "/api/3d/generate"])
def test_a_body_shorter_than_its_content_length_is_refused_whole(
    auth_client, victim, path, body, content_type
):
    """What arrived before the client closed parses, but it is not the request that was
    announced."""
    response = auth_client(victim).generic(
        "POST",
        path,
        content_type=content_type,
        CONTENT_LENGTH=str(len(body) + 100),
        **{"wsgi.input": io.BytesIO(body)},
    )

    assert response.status_code == 400
    assert response.json() == {"error": "Request body shorter than its Content-Length"}
    assert not Job.objects.exists()


def test_a_body_of_exactly_its_content_length_is_taken(auth_client, victim):
    body, content_type = MULTIPART
    response = auth_client(victim).generic(
        "POST",
        "/text-to-3d",
        content_type=content_type,
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body + b"anything sent after it is not read")},
    )

    assert response.status_code == 200
    assert Job.objects.get().prompt == "a mug"
