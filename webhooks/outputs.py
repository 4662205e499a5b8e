"""The JSON bodies of the webhooks' endpoints, rendered like every other (hydrilla.rendering)."""

from rest_framework import serializers

from accounts.serializers import IsoDateTimeField, OptionalText
from hydrilla.rendering import Output
from webhooks.models import DeliveryStatus, EventType


class WebhookSecret(Output):
    secret = serializers.CharField(help_text="whsec_…: verifies your jobs' own webhooks.")
    rotatedAt = IsoDateTimeField(
        source="rotated_at",
        allow_null=True,
        help_text="When it replaced the previous one, which signs too for a while after.",
    )


class WebhookEndpoint(Output):
    id = serializers.UUIDField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    secret = serializers.CharField(help_text="whsec_…: verifies this endpoint's webhooks.")
    createdAt = IsoDateTimeField(source="created_at")
    disabledAt = IsoDateTimeField(
        source="disabled_at", allow_null=True, help_text="Set when it was disabled: no more events."
    )
    disabledReason = OptionalText(source="disabled_reason", allow_null=True)


class WebhookEndpoints(Output):
    webhooks = WebhookEndpoint(many=True)


class WebhookDelivery(Output):
    # One attempt at delivering one event.

    id = serializers.IntegerField()
    event = serializers.ChoiceField(choices=EventType.choices, source="message.event.type")
    webhookId = serializers.CharField(
        source="message.event.webhook_id", help_text="The same on every attempt at one event."
    )
    attempt = serializers.IntegerField(min_value=1)
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    responseStatus = serializers.IntegerField(
        source="response_status", allow_null=True, help_text="null: no answer came."
    )
    error = OptionalText(allow_null=True)
    url = serializers.URLField(source="message.url")
    durationMs = serializers.IntegerField(source="duration_ms", min_value=0)
    createdAt = IsoDateTimeField(source="created_at")


class WebhookDeliveries(Output):
    deliveries = WebhookDelivery(many=True, help_text="Newest first, the latest 100.")
