"""Staff see every receiver and every attempt: why an endpoint was disabled, what each attempt got.
Secrets are never shown; receivers are their owners' to create."""

from django.contrib import admin, messages

from webhooks import services
from webhooks.models import Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "user", "events", "created_at", "disabled_at", "disabled_reason")
    list_filter = (("disabled_at", admin.EmptyFieldListFilter),)
    search_fields = ("url", "user__id", "user__email")
    fields = readonly_fields = (
        "id",
        "user",
        "url",
        "events",
        "created_at",
        "failing_since",
        "disabled_at",
        "disabled_reason",
    )

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "webhook_id",
        "url",
        "attempt",
        "status",
        "response_status",
        "error",
        "duration_ms",
    )
    list_filter = ("status", "message__event__type")
    search_fields = ("message__url", "message__event__job_id")
    list_select_related = ("message__event", "message__endpoint")
    actions = ["resend"]
    fields = readonly_fields = (
        "event_type",
        "webhook_id",
        "url",
        "attempt",
        "status",
        "response_status",
        "error",
        "duration_ms",
        "created_at",
    )

    @admin.display(description="event")
    def event_type(self, delivery):
        return delivery.message.event.type

    @admin.display(description="webhook-id")
    def webhook_id(self, delivery):
        return delivery.message.event.webhook_id

    @admin.display(description="URL")
    def url(self, delivery):
        return delivery.message.url

    @admin.action(description="Resend the selected deliveries' events (same webhook-id)")
    def resend(self, request, queryset):
        refused = 0
        for delivery in queryset:
            try:
                services.resend(delivery)
            except services.EndpointDisabled:
                refused += 1
        self.message_user(request, f"{len(queryset) - refused} sent again")
        if refused:
            self.message_user(request, f"{refused} refused: endpoint disabled", messages.WARNING)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
