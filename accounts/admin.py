from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User


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
