from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from accounts import api_keys
from accounts.models import ApiKey, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "first_name", "last_name", "is_staff", "created_at", "job_count")
    list_filter = ("is_staff",)
    search_fields = ("id", "email")
    # The profile is Clerk's, copied on sync; only API-side staff rights are decided here.
    readonly_fields = (
        "id",
        "email",
        "first_name",
        "last_name",
        "image_url",
        "clerk_created_at",
        "profile_synced_at",
        "created_at",
        "updated_at",
        "job_count",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(job_count=Count("jobs"))

    def has_add_permission(self, request):
        return False  # users come from Clerk, on their first authenticated request

    def has_delete_permission(self, request, obj=None):
        # The cascade would delete the user's jobs without their stored files; Clerk owns users.
        return False

    @admin.display(description="jobs", ordering="job_count")
    def job_count(self, user):
        url = reverse("admin:jobs_job_changelist") + f"?user__id__exact={user.pk}"
        return format_html('<a href="{}">{}</a>', url, user.job_count)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see every user's keys (never the keys themselves: only their hash is stored) and
    revoke them; users make their own through the API."""

    list_display = ("prefix", "name", "user", "mode", "created_at", "last_used_at", "revoked_at")
    list_filter = ("mode", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "user__id", "user__email")
    readonly_fields = (
        "user",
        "name",
        "mode",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    exclude = ("key_hash",)
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False  # a key is shown once, to the user who makes it: through the API

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: who held a key and when it went stays on record

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request, queryset):
        self.message_user(request, f"Revoked {api_keys.revoke_all(queryset)} key(s).")
