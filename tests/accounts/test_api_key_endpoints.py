"""/api/3d/api-keys: a signed-in person makes, lists and revokes their keys; a key never manages
keys; what a client sees matches the schema."""

import pytest
from rest_framework.test import APIClient

from accounts import api_keys
from accounts.models import ApiKey
from tests.factories import UserFactory
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db

KEYS, KEY = "/api/3d/api-keys", "/api/3d/api-keys/{key_id}"


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize(("mode", "prefix"), [("live", "hyd_live_"), ("test", "hyd_test_")])
def test_a_key_is_made_shown_once_and_works(auth_client, user, mode, prefix):
    response = auth_client(user).post(KEYS, {"name": "Pipeline", "mode": mode}, format="json")

    assert response.status_code == 201
    body = assert_matches_schema(response, KEYS, "POST")
    assert set(body) == {"id", "name", "mode", "prefix", "key", "createdAt"}
    assert (body["name"], body["mode"]) == ("Pipeline", mode)
    assert body["key"].startswith(body["prefix"]) and body["prefix"].startswith(prefix)
    me = with_key(body["key"]).get("/api/3d/me")
    assert me.status_code == 200 and me.json()["user"]["id"] == user.pk


def test_a_key_is_live_unless_asked(auth_client, user):
    body = auth_client(user).post(KEYS, {"name": "Server"}, format="json").json()

    assert body["mode"] == "live" and body["key"].startswith("hyd_live_")


def test_the_list_shows_the_callers_working_keys_never_the_keys(auth_client, user):
    client = auth_client(user)
    first = client.post(KEYS, {"name": "first"}, format="json").json()
    second = client.post(KEYS, {"name": "second", "mode": "test"}, format="json").json()
    gone = client.post(KEYS, {"name": "gone"}, format="json").json()
    client.delete(KEY.format(key_id=gone["id"]))
    api_keys.create_key(UserFactory(), name="someone else's")
    with_key(first["key"]).get("/api/3d/me")  # used once

    response = client.get(KEYS)

    body = assert_matches_schema(response, KEYS)
    assert [(k["id"], k["name"], k["mode"]) for k in body["apiKeys"]] == [
        (second["id"], "second", "test"),
        (first["id"], "first", "live"),
    ]
    assert body["apiKeys"][0]["lastUsedAt"] is None and body["apiKeys"][1]["lastUsedAt"]
    assert all(
        set(k) == {"id", "name", "mode", "prefix", "createdAt", "lastUsedAt"}
        for k in body["apiKeys"]
    )
    assert first["key"] not in response.content.decode()


def test_a_revoked_key_is_refused_at_once(auth_client, user):
    client = auth_client(user)
    made = client.post(KEYS, {"name": "Server"}, format="json").json()
    assert with_key(made["key"]).get("/api/3d/history").status_code == 200

    response = client.delete(KEY.format(key_id=made["id"]))

    assert response.status_code == 200
    assert assert_matches_schema(response, KEY, "DELETE") == {
        "success": True,
        "message": "API key revoked",
    }
    refused = with_key(made["key"]).get("/api/3d/history")
    assert refused.status_code == 401 and refused.json() == {"error": "Invalid or revoked API key"}
    assert client.delete(KEY.format(key_id=made["id"])).status_code == 404


def test_nobody_revokes_another_users_key(auth_client, user):
    theirs, key = api_keys.create_key(UserFactory(), name="theirs")

    response = auth_client(user).delete(KEY.format(key_id=theirs.pk))

    assert response.status_code == 404 and response.json() == {"error": "API key not found"}
    assert with_key(key).get("/api/3d/me").status_code == 200


def test_a_key_cannot_manage_keys(user):
    _, key = api_keys.create_key(user, name="server")
    client = with_key(key)

    for response in (
        client.get(KEYS),
        client.post(KEYS, {"name": "another"}, format="json"),
        client.delete(KEY.format(key_id=1)),
    ):
        assert response.status_code == 401
        assert response.json() == {"error": "An API key cannot be used here: sign in"}
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "name: This field is required."),
        ({"name": ""}, "name: This field may not be blank."),
        ({"name": "x" * 101}, "name: Ensure this field has no more than 100 characters."),
        ({"name": "CI", "mode": "sandbox"}, 'mode: "sandbox" is not a valid choice.'),
    ],
)
def test_bad_input_is_a_400_and_makes_no_key(auth_client, user, body, error):
    response = auth_client(user).post(KEYS, body, format="json")

    assert response.status_code == 400 and response.json() == {"error": error}
    assert not ApiKey.objects.exists()


def test_anonymous_callers_are_refused(api_client):
    assert api_client.get(KEYS).status_code == 401
    assert api_client.post(KEYS, {"name": "x"}, format="json").status_code == 401
    assert not ApiKey.objects.exists()


def test_a_retried_creation_makes_one_key_and_never_keeps_the_key_itself(auth_client, user):
    client = auth_client(user)
    first = client.post(KEYS, {"name": "CI"}, format="json", headers={"Idempotency-Key": "k-1"})
    retry = client.post(KEYS, {"name": "CI"}, format="json", headers={"Idempotency-Key": "k-1"})

    assert first.status_code == retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == {**first.json(), "key": None}
    assert_matches_schema(retry, KEYS, "POST")
    assert ApiKey.objects.count() == 1
    listed = client.get(KEYS, headers={"Idempotency-Key": "k-1"})  # a read is never a replay
    assert listed.status_code == 200 and "Idempotent-Replayed" not in listed
