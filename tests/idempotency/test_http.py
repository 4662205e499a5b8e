"""``@idempotent`` on views of its own (this module is their URLconf): a retry with the same
Idempotency-Key gets the first answer and creates nothing, on synchronous and asynchronous views
alike."""

import pytest
from adrf.decorators import api_view as async_api_view
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import encode_multipart
from django.urls import path
from rest_framework import exceptions
from rest_framework.decorators import api_view
from rest_framework.response import Response

from idempotency import services
from idempotency.http import idempotent
from idempotency.models import IdempotentRequest
from tests.factories import UserFactory

# Committed for real: the asynchronous view keeps its key from a thread of its own.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

made = []


def _make(request):
    if request.data.get("refuse"):
        raise exceptions.ValidationError("refused")
    made.append(request.path)
    upload = request.FILES.get("image")
    return Response(
        {"made": len(made), "bytes": len(upload.read()) if upload else None, "zeta": 1, "alpha": 2},
        status=201,
    )


@api_view(["POST"])
@idempotent
def make(request):
    return _make(request)


@async_api_view(["POST"])
@idempotent
async def make_async(request):
    return _make(request)


urlpatterns = [path("make", make), path("make-async", make_async)]


@pytest.fixture(autouse=True)
def nothing_made_yet():
    made.clear()


@pytest.fixture
def client(auth_client):
    return auth_client(UserFactory())


def post(client, body=None, key="key-1", path="/make", **extra):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(path, body or {"prompt": "a mug"}, format="json", headers=headers, **extra)


@pytest.mark.parametrize("path", ["/make", "/make-async"])
def test_a_retry_gets_the_first_answer_and_creates_nothing(client, path):
    first = post(client, path=path)
    retry = post(client, path=path)

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content  # byte for byte: key order kept
    assert retry["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert made == [path]


def test_without_a_key_every_request_is_handled(client):
    post(client, key=None)
    post(client, key=None)

    assert len(made) == 2 and not IdempotentRequest.objects.exists()


def test_the_same_body_in_another_key_order_is_the_same_request(client):
    post(client, {"prompt": "a mug", "faceCount": 500})
    retry = post(client, {"faceCount": 500, "prompt": "a mug"})

    assert retry["Idempotent-Replayed"] == "true" and len(made) == 1


@pytest.mark.parametrize("path", ["/make", "/make-async"])
def test_the_key_with_another_body_is_a_422_and_creates_nothing(client, path):
    post(client, path=path)
    other = post(client, {"prompt": "a cup"}, path=path)

    assert other.status_code == 422
    assert other.json() == {"error": "This Idempotency-Key was already used with another request"}
    assert len(made) == 1


@pytest.mark.parametrize("key", ["", "two words", "x" * 256])
def test_an_unusable_key_is_a_400_and_creates_nothing(client, key):
    response = post(client, key=key)

    assert response.status_code == 400
    assert response.json() == {"error": "Idempotency-Key must be 1 to 255 visible ASCII characters"}
    assert made == [] and not IdempotentRequest.objects.exists()


@pytest.mark.parametrize("path", ["/make", "/make-async"])
def test_a_raised_error_gives_the_key_back(client, path):
    refused = post(client, {"refuse": True}, path=path)
    assert refused.status_code == 400 and not IdempotentRequest.objects.exists()

    again = post(client, {"refuse": True}, path=path)
    assert again.status_code == 400 and "Idempotent-Replayed" not in again


def test_keys_are_each_callers_own(auth_client):
    first, second = auth_client(UserFactory()), auth_client(UserFactory())

    assert "Idempotent-Replayed" not in post(first)
    assert "Idempotent-Replayed" not in post(second)
    assert len(made) == 2


def test_a_retry_while_the_first_is_handled_is_a_409_with_retry_after(auth_client, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    user = UserFactory()
    services.begin(
        f"user:{user.pk}", "key-1", services.fingerprint("POST", "/make", {"prompt": "a mug"})
    )

    response = post(auth_client(user))

    assert response.status_code == 409 and response["Retry-After"] == "1"
    assert "still being handled" in response.json()["error"]
    assert made == []


def multipart(client, data: bytes, boundary: str):
    body = encode_multipart(boundary, {"image": image(data), "name": "photo"})
    return client.post(
        "/make",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Idempotency-Key": "upload-1"},
    )


def image(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("photo.png", data, content_type="image/png")


def test_a_multipart_retry_with_another_boundary_is_the_same_request_another_file_is_not(client):
    first = multipart(client, b"PNG one", "boundary-of-the-first")
    retry = multipart(client, b"PNG one", "boundary-of-the-retry")
    other = multipart(client, b"PNG two", "boundary-of-the-retry")

    assert first.status_code == retry.status_code == 201 and first.json()["bytes"] == 7
    assert retry["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert len(made) == 1
