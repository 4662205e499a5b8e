"""Staff see every endpoint (why one was disabled) and every attempt, and resend from the admin;
secrets never show."""

import pytest
from django.urls import reverse

from tests.factories import JobFactory
from tests.helpers.jobs import start
from webhooks import services
from webhooks.models import Delivery, Message, MessageState

pytestmark = pytest.mark.django_db


def test_staff_see_endpoints_and_attempts_without_secrets_and_resend_one(
    admin_client, endpoint, receiver
):
    hooks = receiver(statuses=[410])
    account = endpoint(hooks.url)
    start(JobFactory(user=account.user).pk)
    services.deliver(Message.objects.get().pk)
    other = endpoint(receiver().url)
    start(JobFactory(user=other.user).pk)
    services.deliver(Message.objects.get(endpoint=other).pk)

    endpoints = admin_client.get(reverse("admin:webhooks_endpoint_changelist")).content.decode()
    assert "It answered 410 Gone" in endpoints
    assert account.secret not in endpoints
    detail = admin_client.get(reverse("admin:webhooks_endpoint_change", args=[account.pk]))
    assert detail.status_code == 200 and account.secret not in detail.content.decode()

    deliveries = admin_client.get(reverse("admin:webhooks_delivery_changelist")).content.decode()
    assert "job.started" in deliveries and "410" in deliveries

    response = admin_client.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "resend", "_selected_action": [d.pk for d in Delivery.objects.all()]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["1 sent again", "1 refused: endpoint disabled"]
    assert Message.objects.get(endpoint=other).state == MessageState.PENDING
