"""/api/3d/webhooks as a client meets it: the signing secret, account endpoints, their deliveries
and resends; every body as the published schema describes it."""

import pytest

from tests.factories import JobFactory
from tests.helpers.jobs import start
from tests.helpers.schema import assert_matches_schema
from webhooks import services
from webhooks.models import Endpoint, EventType, Message, MessageState, SigningSecret

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/3d/webhooks"


@pytest.fixture
def hook_names(names):
    names["hooks.example.com"] = ["93.184.215.34"]
    names["hooks.internal.example.com"] = ["10.1.2.3"]
    return names


def test_a_user_reads_their_signing_secret_and_rotates_it(auth_client, user):
    client = auth_client(user)

    first = client.get(f"{WEBHOOKS}/secret")
    assert first.status_code == 200
    body = assert_matches_schema(first, f"{WEBHOOKS}/secret")
    assert body["secret"].startswith("whsec_") and body["rotatedAt"] is None
    assert client.get(f"{WEBHOOKS}/secret").json() == body  # made once, then kept

    rotated = client.post(f"{WEBHOOKS}/secret")
    assert rotated.status_code == 200
    assert_matches_schema(rotated, f"{WEBHOOKS}/secret", "POST")
    assert rotated.json()["secret"] not in (body["secret"], None)
    assert client.get(f"{WEBHOOKS}/secret").json()["secret"] == rotated.json()["secret"]
    assert SigningSecret.objects.get(user=user).previous_secret == body["secret"]


def test_an_endpoint_is_created_with_its_own_secret_listed_and_deleted(
    auth_client, user, hook_names
):
    client = auth_client(user)

    created = client.post(
        WEBHOOKS,
        {"url": "https://hooks.example.com/in", "events": ["job.completed", "job.failed"]},
        format="json",
    )
    assert created.status_code == 201
    body = assert_matches_schema(created, WEBHOOKS, "POST")
    assert set(body) >= {"id", "url", "events", "secret", "createdAt"}
    assert body["url"] == "https://hooks.example.com/in"
    assert body["events"] == ["job.completed", "job.failed"]
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != services.signing_secret(user).secret

    listed = client.get(WEBHOOKS)
    assert_matches_schema(listed, WEBHOOKS)
    assert [webhook["id"] for webhook in listed.json()["webhooks"]] == [body["id"]]

    deleted = client.delete(f"{WEBHOOKS}/{body['id']}")
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert client.get(WEBHOOKS).json() == {"webhooks": []}


def test_an_endpoint_without_events_gets_every_one_but_progress(auth_client, user, hook_names):
    body = (
        auth_client(user)
        .post(WEBHOOKS, {"url": "https://hooks.example.com/in"}, format="json")
        .json()
    )
    assert body["events"] == services.default_events()
    assert EventType.PROGRESS not in body["events"]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"url": "https://hooks.internal.example.com/in"}, "is not a public host"),
        ({"url": "http://hooks.example.com/in"}, "The webhook URL must be https"),
        ({"url": "not a url"}, "url: Enter a valid http(s) URL."),
        ({"url": "https://hooks.example.com/in", "events": ["job.exploded"]}, "events"),
        ({"url": "https://hooks.example.com/in", "events": []}, "events"),
        ({}, "url: This field is required."),
    ],
)
def test_a_refused_endpoint_is_a_400_and_nothing_is_written(
    auth_client, user, hook_names, payload, message
):
    response = auth_client(user).post(WEBHOOKS, payload, format="json")

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", WEBHOOKS),
        ("post", WEBHOOKS),
        ("get", f"{WEBHOOKS}/secret"),
        ("post", f"{WEBHOOKS}/secret"),
        ("get", f"{WEBHOOKS}/6f1c6c4e-1111-4222-8333-944455556666/deliveries"),
    ],
)
def test_anonymous_callers_are_refused(api_client, method, path):
    response = getattr(api_client, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required"}
    assert not SigningSecret.objects.exists()


def test_another_user_s_endpoint_is_not_found(auth_client, endpoint, user, hook_names):
    theirs = endpoint("https://hooks.example.com/in")
    client = auth_client(user)

    for response in (
        client.delete(f"{WEBHOOKS}/{theirs.pk}"),
        client.get(f"{WEBHOOKS}/{theirs.pk}/deliveries"),
        client.get(f"{WEBHOOKS}/not-an-id/deliveries"),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "Webhook endpoint not found"}
    assert Endpoint.objects.filter(pk=theirs.pk).exists()


def test_an_endpoint_s_deliveries_are_listed_and_one_is_resent(
    auth_client, endpoint, receiver, django_capture_on_commit_callbacks
):
    hooks = receiver(statuses=[500])
    account = endpoint(hooks.url)
    job = JobFactory(user=account.user)
    start(job.pk)
    message = Message.objects.get()
    services.deliver(message.pk)
    client = auth_client(account.user)

    listed = client.get(f"{WEBHOOKS}/{account.pk}/deliveries")
    assert listed.status_code == 200
    [delivery] = assert_matches_schema(listed, f"{WEBHOOKS}/{{endpoint_id}}/deliveries")[
        "deliveries"
    ]
    assert {key: delivery[key] for key in ("event", "webhookId", "attempt", "status")} == {
        "event": "job.started",
        "webhookId": message.event.webhook_id,
        "attempt": 1,
        "status": "failed",
    }
    assert delivery["responseStatus"] == 500 and delivery["createdAt"].endswith("Z")

    path = f"{WEBHOOKS}/{account.pk}/deliveries/{delivery['id']}/resend"
    with django_capture_on_commit_callbacks() as published:
        resent = client.post(path)
    assert resent.status_code == 200
    assert_matches_schema(
        resent, f"{WEBHOOKS}/{{endpoint_id}}/deliveries/{{delivery_id}}/resend", "POST"
    )
    assert len(published) == 1  # the message goes to the broker once committed
    assert Message.objects.get().state == MessageState.PENDING
    assert client.post(f"{WEBHOOKS}/{account.pk}/deliveries/999999/resend").status_code == 404


def test_a_disabled_endpoint_shows_why_and_refuses_a_resend(auth_client, endpoint, receiver):
    hooks = receiver(statuses=[410])
    account = endpoint(hooks.url)
    start(JobFactory(user=account.user).pk)
    services.deliver(Message.objects.get().pk)
    client = auth_client(account.user)

    [shown] = client.get(WEBHOOKS).json()["webhooks"]
    assert shown["disabledAt"] is not None
    assert shown["disabledReason"] == "It answered 410 Gone"
    [delivery] = client.get(f"{WEBHOOKS}/{account.pk}/deliveries").json()["deliveries"]
    response = client.post(f"{WEBHOOKS}/{account.pk}/deliveries/{delivery['id']}/resend")
    assert response.status_code == 409
    assert response.json() == {"error": "The endpoint is disabled: It answered 410 Gone"}
