"""Reads of webhooks: a user's endpoints and their deliveries."""

import uuid

from accounts.models import User
from webhooks.models import Delivery, Endpoint

DELIVERIES_SHOWN = 100


def endpoints(user: User):
    return Endpoint.objects.filter(user=user).order_by("-created_at")


def endpoint_of(user: User, endpoint_id) -> Endpoint | None:
    """The user's endpoint with this id; None for another's, unknown and malformed ids alike."""
    try:
        endpoint_uuid = uuid.UUID(str(endpoint_id))
    except ValueError:
        return None
    return Endpoint.objects.filter(user=user, pk=endpoint_uuid).first()


def deliveries(endpoint: Endpoint):
    """The endpoint's latest attempts, newest first, with their events."""
    return Delivery.objects.filter(message__endpoint=endpoint).select_related("message__event")[
        :DELIVERIES_SHOWN
    ]


def delivery_of(endpoint: Endpoint, delivery_id) -> Delivery | None:
    if not str(delivery_id).isdigit():
        return None
    return (
        Delivery.objects.filter(message__endpoint=endpoint, pk=int(delivery_id))
        .select_related("message__endpoint", "message__event")
        .first()
    )
