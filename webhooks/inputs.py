"""What the webhooks' endpoints accept (a submit's own receiver is in every submit body:
jobs.api.inputs.JobWebhookFields)."""

from rest_framework import serializers

from jobs.api.inputs import EventsField, HttpUrlField


class WebhookInput(serializers.Serializer):
    url = HttpUrlField(max_length=2048)
    events = EventsField(
        required=False, help_text="The events it receives; by default every one but job.progress."
    )
