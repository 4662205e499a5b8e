"""``/api/3d/me`` and ``/api/3d/sync-user``: the caller's profile, from Clerk or from the token."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as django_timezone

from accounts.models import User
from jobs.models import JobKind, JobState
from tests.factories import JobFactory, UserFactory

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
JAN_1_2024_MS = 1704067200000


def parse_iso_z(value: str) -> datetime:
    assert ISO_Z.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def clerk_user(clerk_secret_key):
    """A user as Clerk knows them: two addresses, the second one primary."""
    return clerk_secret_key.add_user(
        "user_2hydrilla",
        emails=("old@example.com", "ada@example.com"),
        primary="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        image_url="https://img.clerk.com/ada.png",
        created_at_ms=JAN_1_2024_MS,
    )


@pytest.fixture
def pem_and_secret(settings, clerk_secret_key, token_minter):
    """Networkless verification, profiles from the Backend API: a Clerk outage leaves auth alone."""
    settings.CLERK_JWT_KEY = token_minter.public_pem
    return clerk_secret_key


# --- /me from Clerk's Backend API
# ------------------------------------------------------------------


@pytest.mark.django_db
def test_me_answers_the_spec_shape_from_clerk(clerk_user, bearer):
    response = bearer(user_id="user_2hydrilla").get("/api/3d/me")

    assert response.status_code == 200
    assert response.json() == {
        "user": {
            "id": "user_2hydrilla",
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "imageUrl": "https://img.clerk.com/ada.png",
            "createdAt": "2024-01-01T00:00:00.000Z",
        },
        "stats": {"totalJobs": 0, "completedJobs": 0},
    }


@pytest.mark.django_db
def test_me_stats_count_the_callers_jobs_only(clerk_user, bearer):
    me = UserFactory(id="user_2hydrilla")
    JobFactory(user=me, state=JobState.COMPLETED)
    JobFactory(user=me, state=JobState.COMPLETED, kind=JobKind.PREVIEW)
    JobFactory(user=me, state=JobState.PENDING)
    JobFactory(user=me, state=JobState.FAILED)
    JobFactory.create_batch(3, state=JobState.COMPLETED)  # someone else's
    JobFactory(user=None, state=JobState.COMPLETED)

    response = bearer(user_id="user_2hydrilla").get("/api/3d/me")

    assert response.json()["stats"] == {"totalJobs": 4, "completedJobs": 2}


@pytest.mark.django_db
def test_me_replaces_a_never_synced_row_with_clerks_profile(clerk_user, bearer):
    UserFactory(id="user_2hydrilla", email="stale@example.com", first_name="Old", last_name="Name")

    user = bearer(user_id="user_2hydrilla").get("/api/3d/me").json()["user"]

    assert (user["email"], user["firstName"], user["lastName"]) == (
        "ada@example.com",
        "Ada",
        "Lovelace",
    )


@pytest.mark.django_db
def test_me_caches_the_profile_on_the_user_row(clerk_user, bearer, clerk_secret_key):
    path = clerk_secret_key.user_path("user_2hydrilla")

    first = bearer(user_id="user_2hydrilla").get("/api/3d/me").json()
    clerk_secret_key.update_user("user_2hydrilla", first_name="Augusta")
    second = bearer(user_id="user_2hydrilla").get("/api/3d/me").json()

    assert second == first
    assert clerk_secret_key.requests_to(path) == 1
    row = User.objects.get(pk="user_2hydrilla")
    assert (row.email, row.first_name, row.image_url) == (
        "ada@example.com",
        "Ada",
        "https://img.clerk.com/ada.png",
    )


@pytest.mark.django_db
def test_me_refreshes_a_profile_older_than_the_max_age(
    settings, clerk_user, bearer, clerk_secret_key
):
    bearer(user_id="user_2hydrilla").get("/api/3d/me")
    clerk_secret_key.update_user(
        "user_2hydrilla", first_name="Augusta", image_url="https://img.clerk.com/new.png"
    )
    User.objects.filter(pk="user_2hydrilla").update(
        profile_synced_at=django_timezone.now()
        - timedelta(seconds=settings.CLERK_PROFILE_MAX_AGE_SECONDS + 1)
    )

    user = bearer(user_id="user_2hydrilla").get("/api/3d/me").json()["user"]

    assert (user["firstName"], user["imageUrl"]) == ("Augusta", "https://img.clerk.com/new.png")
    assert clerk_secret_key.requests_to(clerk_secret_key.user_path("user_2hydrilla")) == 2


@pytest.mark.django_db
def test_me_falls_back_to_the_first_address_and_nulls(clerk_secret_key, bearer):
    clerk_secret_key.add_user("user_sparse", emails=("only@example.com",), image_url="")
    clerk_secret_key.users["user_sparse"]["primary_email_address_id"] = None

    user = bearer(user_id="user_sparse").get("/api/3d/me").json()["user"]

    assert user["email"] == "only@example.com"
    assert (user["firstName"], user["lastName"], user["imageUrl"]) == (None, None, None)


@pytest.mark.django_db
def test_me_without_any_email_address_answers_null(clerk_secret_key, bearer):
    clerk_secret_key.add_user("user_phone_only", first_name="Grace")

    user = bearer(user_id="user_phone_only").get("/api/3d/me").json()["user"]

    assert user["email"] is None
    assert user["firstName"] == "Grace"


# --- /sync-user ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_user_creates_the_user_and_answers_the_spec_shape(clerk_user, bearer):
    assert not User.objects.exists()

    response = bearer(user_id="user_2hydrilla").post("/api/3d/sync-user")

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "user": {
            "id": "user_2hydrilla",
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
        },
    }
    row = User.objects.get(pk="user_2hydrilla")
    assert row.clerk_created_at == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_sync_user_always_asks_clerk_and_me_then_uses_the_fresh_copy(
    clerk_user, bearer, clerk_secret_key
):
    path = clerk_secret_key.user_path("user_2hydrilla")
    bearer(user_id="user_2hydrilla").get("/api/3d/me")
    clerk_secret_key.update_user("user_2hydrilla", last_name="King")

    synced = bearer(user_id="user_2hydrilla").post("/api/3d/sync-user").json()
    me = bearer(user_id="user_2hydrilla").get("/api/3d/me").json()

    assert synced["user"]["lastName"] == "King"
    assert me["user"]["lastName"] == "King"
    assert clerk_secret_key.requests_to(path) == 2


@pytest.mark.django_db
def test_sync_user_is_idempotent(clerk_user, bearer):
    first = bearer(user_id="user_2hydrilla").post("/api/3d/sync-user")
    second = bearer(user_id="user_2hydrilla").post("/api/3d/sync-user")

    assert first.json() == second.json()
    assert User.objects.count() == 1


# --- without a secret key: the token's claims
# ------------------------------------------------------


@pytest.mark.django_db
def test_without_a_secret_key_the_profile_comes_from_the_claims(settings, fake_clerk, bearer):
    settings.CLERK_API_URL = fake_clerk.url  # Clerk must not be asked, even if reachable
    client = bearer(
        user_id="user_claims",
        email="grace@example.com",
        first_name="Grace",
        last_name="Hopper",
        image_url="https://img.clerk.com/grace.png",
    )

    before = django_timezone.now()
    me = client.get("/api/3d/me")
    synced = client.post("/api/3d/sync-user")

    assert me.status_code == 200
    body = me.json()
    created_at = parse_iso_z(body["user"].pop("createdAt"))
    assert before - timedelta(seconds=1) <= created_at <= django_timezone.now()
    assert body == {
        "user": {
            "id": "user_claims",
            "email": "grace@example.com",
            "firstName": "Grace",
            "lastName": "Hopper",
            "imageUrl": "https://img.clerk.com/grace.png",
        },
        "stats": {"totalJobs": 0, "completedJobs": 0},
    }
    assert synced.json() == {
        "success": True,
        "user": {
            "id": "user_claims",
            "email": "grace@example.com",
            "firstName": "Grace",
            "lastName": "Hopper",
        },
    }
    assert fake_clerk.requests == []


@pytest.mark.django_db
def test_a_default_token_without_profile_claims_gives_nulls(bearer):
    body = bearer(user_id="user_bare").get("/api/3d/me").json()

    assert {key: value for key, value in body["user"].items() if key != "createdAt"} == {
        "id": "user_bare",
        "email": None,
        "firstName": None,
        "lastName": None,
        "imageUrl": None,
    }
    parse_iso_z(body["user"]["createdAt"])


@pytest.mark.django_db
def test_claims_stats_count_the_callers_jobs_only(auth_client):
    me, other = UserFactory(), UserFactory()
    JobFactory.create_batch(2, user=me, state=JobState.COMPLETED)
    JobFactory(user=me, state=JobState.CANCELLED)
    JobFactory(user=other, state=JobState.COMPLETED)

    assert auth_client(me).get("/api/3d/me").json()["stats"] == {"totalJobs": 3, "completedJobs": 2}


# --- Clerk outages
# ---------------------------------------------------------------------------------


def _cached_user(**fields):
    return UserFactory(
        id="user_cached",
        email="cached@example.com",
        first_name="Cached",
        last_name="Copy",
        image_url="https://img.clerk.com/cached.png",
        clerk_created_at=datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC),
        profile_synced_at=django_timezone.now() - timedelta(days=2),
        **fields,
    )


CACHED = {
    "id": "user_cached",
    "email": "cached@example.com",
    "firstName": "Cached",
    "lastName": "Copy",
    "imageUrl": "https://img.clerk.com/cached.png",
    "createdAt": "2023-05-06T07:08:09.000Z",
}


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["500", "connection refused"])
def test_a_clerk_outage_keeps_the_cached_profile(outage, pem_and_secret, bearer):
    _cached_user()
    pem_and_secret.add_user("user_cached", emails=("new@example.com",), first_name="New")
    if outage == "500":
        pem_and_secret.fail_with(500)
    else:
        pem_and_secret.go_down()

    me = bearer(user_id="user_cached").get("/api/3d/me")
    synced = bearer(user_id="user_cached").post("/api/3d/sync-user")

    assert me.status_code == 200
    assert me.json() == {"user": CACHED, "stats": {"totalJobs": 0, "completedJobs": 0}}
    assert synced.status_code == 200
    assert synced.json() == {
        "success": True,
        "user": {key: CACHED[key] for key in ("id", "email", "firstName", "lastName")},
    }
    assert pem_and_secret.requests_to(pem_and_secret.user_path("user_cached")) == (
        2 if outage == "500" else 0
    )


@pytest.mark.django_db
def test_the_profile_is_refreshed_once_clerk_is_back(pem_and_secret, bearer):
    _cached_user()
    pem_and_secret.add_user("user_cached", emails=("new@example.com",), first_name="New")
    pem_and_secret.fail_with(500)
    assert (
        bearer(user_id="user_cached").get("/api/3d/me").json()["user"]["email"]
        == "cached@example.com"
    )

    pem_and_secret.fail_with(None)
    user = bearer(user_id="user_cached").get("/api/3d/me").json()["user"]

    assert (user["email"], user["firstName"]) == ("new@example.com", "New")


@pytest.mark.django_db
def test_a_user_clerk_cannot_describe_yet_still_gets_200(pem_and_secret, bearer):
    pem_and_secret.fail_with(500)

    response = bearer(user_id="user_unsynced").get("/api/3d/me")

    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["id"], user["email"], user["firstName"]) == ("user_unsynced", None, None)
    parse_iso_z(user["createdAt"])


@pytest.mark.django_db
def test_with_keys_from_clerk_an_outage_still_serves_me_from_cache(
    clerk_user, clerk_secret_key, bearer
):
    assert bearer(user_id="user_2hydrilla").get("/api/3d/me").status_code == 200
    clerk_secret_key.go_down()
    User.objects.filter(pk="user_2hydrilla").update(
        profile_synced_at=django_timezone.now() - timedelta(days=2)
    )

    response = bearer(user_id="user_2hydrilla").get("/api/3d/me")

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ada@example.com"
