"""What the webhooks' endpoints accept, and the two fields every submit body takes for a job's own
receiver (``JobWebhookFields``)."""

from rest_framework import serializers

from jobs.api.inputs import HttpUrlField
from webhooks.models import EventType

MAX_URL_LENGTH = 2048


class EventsField(serializers.ListField):
    """Event types, each once, in the order given; at least one."""

    child = serializers.ChoiceField(choices=EventType.choices)

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, **kwargs)

    def to_internal_value(self, data):
        return list(dict.fromkeys(super().to_internal_value(data)))


class WebhookInput(serializers.Serializer):
    url = HttpUrlField(max_length=MAX_URL_LENGTH)
    events = EventsField(
        required=False, help_text="The events it receives; by default every one but job.progress."
    )


class JobWebhookFields(serializers.Serializer):
    # A submit's own receiver: mixed into every submit body's serializer.
    webhookUrl = HttpUrlField(
        max_length=MAX_URL_LENGTH,
        required=False,
        help_text="Receives this job's events, signed with your secret (GET "
        "/api/3d/webhooks/secret); signed-in callers only.",
    )
    webhookEvents = EventsField(
        required=False,
        help_text="The events webhookUrl receives; by default every one but job.progress.",
    )
