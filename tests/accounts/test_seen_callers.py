"""A poll authenticates without a database round trip or a second signature check for a caller seen
in the last minute; expiry, deletion and writes still count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import clerk
from accounts.models import User
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_a_token_is_verified_once_and_still_expires(api_client, token_minter, monkeypatch, user):
    job = JobFactory(user=user)
    token = token_minter.token(user.pk)
    verified = []
    verify = clerk._verify
    monkeypatch.setattr(clerk, "_verify", lambda token: verified.append(token) or verify(token))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert api_client.get(f"/api/3d/status/{job.pk}").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert api_client.get(f"/api/3d/status/{job.pk}").status_code == 200
    assert len(verified) == 1
    assert not [
        query
        for query in queries
        if 'FROM "accounts_user"' in query["sql"] or 'INTO "accounts_user"' in query["sql"]
    ]

    expiry = clerk._verify(token)["exp"]
    monkeypatch.setattr(clerk, "_now", lambda: expiry + clerk.settings.CLERK_LEEWAY_SECONDS + 1)
    response = api_client.get(f"/api/3d/status/{job.pk}")
    assert response.status_code == 401 and response.json() == {"error": "Invalid or expired token"}


def test_a_write_reads_the_user_row_and_recreates_a_deleted_user(auth_client, user, monkeypatch):
    from jobs.services import shared

    monkeypatch.setattr(shared, "enqueue", lambda job: None)
    client = auth_client(user)
    assert client.get("/api/3d/history").status_code == 200  # seen, and kept by this process
    User.objects.filter(pk=user.pk).delete()

    response = client.post("/api/3d/generate", {"prompt": "a vase"}, format="json")

    assert response.status_code == 200
    assert User.objects.filter(pk=user.pk).exists()
