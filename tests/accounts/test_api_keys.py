"""API keys at the API's door: a key acts as its user, a wrong or revoked one is refused at once,
and the key itself is stored nowhere and logged nowhere."""

import hashlib
import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import api_keys
from accounts.authentication import uses_test_key
from accounts.models import ApiKey, ApiKeyMode
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

REFUSED = {"error": "Invalid or revoked API key"}


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def assert_refused(response):
    assert response.status_code == 401, response.content
    assert response.json() == REFUSED
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("mode", "prefix"), [("live", "hyd_live_"), ("test", "hyd_test_")])
def test_a_key_is_shown_once_and_only_its_hash_and_prefix_are_kept(user, mode, prefix):
    api_key, key = api_keys.create_key(user, name="CI", mode=mode)

    row = ApiKey.objects.get(pk=api_key.pk)
    assert key.startswith(prefix) and len(key) == len(prefix) + 43
    assert row.prefix == key[: len(prefix) + 8]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [str(value) for value in ApiKey.objects.filter(pk=row.pk).values().get().values()]
    assert not any(key[len(prefix) + 8 :] in value for value in stored)
    assert (row.mode, row.name, row.user_id) == (mode, "CI", user.pk)


def test_two_keys_of_one_user_differ(user):
    _, first = api_keys.create_key(user, name="a")
    _, second = api_keys.create_key(user, name="b")

    assert first != second


def test_a_key_acts_as_its_user_on_reads_and_writes(user):
    _, key = api_keys.create_key(user, name="server")
    job = JobFactory(user=user)
    client = with_key(key)

    me = client.get("/api/3d/me")
    history = client.get("/api/3d/history")
    renamed = client.patch(f"/api/3d/jobs/{job.pk}/name", {"name": "From CI"}, format="json")

    assert me.status_code == 200 and me.json()["user"]["id"] == user.pk
    assert [entry["id"] for entry in history.json()["jobs"]] == [str(job.pk)]
    assert renamed.status_code == 200
    job.refresh_from_db()
    assert job.name == "From CI"


def test_a_key_cannot_touch_another_users_jobs(user):
    _, key = api_keys.create_key(user, name="server")
    someone_elses = JobFactory(user=UserFactory(), name="Theirs")

    response = with_key(key).patch(
        f"/api/3d/jobs/{someone_elses.pk}/name", {"name": "Mine"}, format="json"
    )

    assert response.status_code == 403
    someone_elses.refresh_from_db()
    assert someone_elses.name == "Theirs"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # the right prefix, a wrong secret
        lambda key: key + "x",
        lambda key: key[:20],
        lambda key: key.replace("hyd_live_", "hyd_test_"),
        lambda key: "hyd_live_",
        lambda key: "hyd_live_" + "A" * 43,
    ],
)
def test_a_key_that_is_not_one_is_refused_and_nothing_is_changed(user, mangle):
    _, key = api_keys.create_key(user, name="server")
    job = JobFactory(user=user, name="Kept")

    response = with_key(mangle(key)).patch(
        f"/api/3d/jobs/{job.pk}/name", {"name": "Changed"}, format="json"
    )

    assert_refused(response)
    job.refresh_from_db()
    assert job.name == "Kept"


def test_a_wrong_key_on_an_optional_auth_endpoint_is_refused_not_anonymous(user):
    assert_refused(with_key("hyd_live_" + "x" * 43).get("/api/3d/history"))


def test_a_revoked_key_is_refused_on_its_next_request(user):
    api_key, key = api_keys.create_key(user, name="server")
    client = with_key(key)
    assert client.get("/api/3d/me").status_code == 200

    api_keys.revoke(ApiKey.objects.get(pk=api_key.pk))  # as another process would: by the row

    assert_refused(client.get("/api/3d/me"))
    assert_refused(client.get("/api/3d/history"))


def test_revoking_one_key_leaves_the_users_other_keys_working(user):
    revoked, revoked_key = api_keys.create_key(user, name="old")
    _, kept_key = api_keys.create_key(user, name="new")

    api_keys.revoke(revoked)

    assert_refused(with_key(revoked_key).get("/api/3d/me"))
    assert with_key(kept_key).get("/api/3d/me").status_code == 200
    assert [k.name for k in api_keys.keys_of(user)] == ["new"]


def test_a_user_finds_only_their_own_working_keys(user):
    mine, _ = api_keys.create_key(user, name="mine")
    theirs, _ = api_keys.create_key(UserFactory(), name="theirs")
    gone, _ = api_keys.create_key(user, name="gone")
    api_keys.revoke(gone)
    staff = UserFactory(is_staff=True)

    assert api_keys.key_of(user, mine.pk) == mine
    assert api_keys.key_of(user, str(mine.pk)) == mine
    assert api_keys.key_of(user, theirs.pk) is None
    assert api_keys.key_of(user, gone.pk) is None
    assert api_keys.key_of(user, "not-a-number") is None
    assert api_keys.key_of(staff, mine.pk) is None  # staff revoke others' keys in admin


def test_revoke_all_counts_only_the_keys_that_still_worked(user):
    for name in ("a", "b", "c"):
        api_keys.create_key(user, name=name)
    api_keys.revoke(ApiKey.objects.get(name="a"))

    assert api_keys.revoke_all(ApiKey.objects.filter(user=user)) == 2
    assert not api_keys.keys_of(user).exists()


def test_last_used_is_written_at_most_once_a_minute(user):
    api_key, key = api_keys.create_key(user, name="server")
    client = with_key(key)
    assert api_key.last_used_at is None

    client.get("/api/3d/me")
    first = ApiKey.objects.get(pk=api_key.pk).last_used_at
    client.get("/api/3d/me")
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == first

    a_while_ago = timezone.now() - timedelta(minutes=2)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=a_while_ago)
    client.get("/api/3d/me")
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at > first


def test_a_clerk_token_still_works_beside_keys(user, auth_client):
    api_keys.create_key(user, name="server")

    assert auth_client(user).get("/api/3d/me").json()["user"]["id"] == user.pk


@pytest.mark.parametrize(("mode", "is_test"), [(ApiKeyMode.LIVE, False), (ApiKeyMode.TEST, True)])
def test_the_request_knows_a_test_key(user, mode, is_test, rf):
    api_key, _ = api_keys.create_key(user, name="server", mode=mode)
    request = rf.get("/")
    request.auth = api_key

    assert uses_test_key(request) is is_test
    request.auth = {"sub": user.pk}  # Clerk's claims
    assert uses_test_key(request) is False


def test_a_key_is_never_logged(user, caplog):
    caplog.set_level(logging.DEBUG)
    api_key, key = api_keys.create_key(user, name="server")
    secret = key[len("hyd_live_") + api_keys.SHOWN_CHARACTERS :]

    with_key(key).get("/api/3d/me")
    with_key(key[:-2] + "zz").get("/api/3d/me")
    api_keys.revoke(api_key)
    with_key(key).get("/api/3d/me")

    assert caplog.records, "the refusals are logged"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logged and secret[:-2] not in logged
    assert api_key.prefix in logged  # what is logged instead
