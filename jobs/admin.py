"""Staff's view of jobs. Every write goes through ``jobs.services``, as it does for the API: the
form only renames, a delete removes the stored files, and the actions are the commands' services."""

from django.contrib import admin, messages
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.text import Truncator

from jobs import storage
from jobs.api.outputs import preview_url
from jobs.models import JOB_API_STATUS, Job
from jobs.plan import MODEL_STEPS, Step
from jobs.services import clients, staff

# <model-viewer> (Google, Apache-2.0, three.js inside), vendored from the npm registry's
# @google/model-viewer package: served with the admin's own static files, no CDN.
MODEL_VIEWER_SCRIPT = "jobs/vendor/model-viewer-4.4.0/model-viewer.min.js"

# Outcomes worth a warning rather than a success message.
NOT_DONE = {
    staff.StaffOutcome.REFUSED,
    staff.StaffOutcome.ENDED,
    staff.StaffOutcome.CHANGED,
    staff.StaffOutcome.NOT_QUEUED,
}


def _new_tab_link(url: str | None, label: str):
    if not url:
        return "—"
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, label)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "name",
        "api_status",
        "internal_state",
        "kind",
        "owner",
        "short_prompt",
        "progress",
        "stage",
        "attempts",
        "started_at",
        "elapsed_seconds",
        "created_at",
        "updated_at",
        "glb",
        "preview",
    )
    list_display_links = ("short_id",)
    list_editable = ("name",)
    list_filter = ("state", "kind", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("id", "prompt", "user__email")
    list_select_related = ("user",)
    actions = ("requeue", "cancel")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "api_status",
                    "state",
                    "kind",
                    "user",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            "Input",
            {
                "fields": (
                    "prompt",
                    "image_url",
                    "input_image",
                    "generate_type",
                    "face_count",
                    "enable_pbr",
                    "polygon_type",
                    "seed",
                )
            },
        ),
        (
            "Run",
            {
                "fields": (
                    "progress",
                    "message",
                    "stage",
                    "queued_at",
                    "attempts",
                    "worker",
                    "worker_process",
                    "cancel_requested",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "elapsed_seconds",
                    "stage_times",
                    "step_times",
                )
            },
        ),
        ("Error", {"fields": ("error_code", "error_message")}),
        (
            "Files",
            {
                "fields": (
                    "glb",
                    "preview",
                    "model_and_preview",
                    "processed_image",
                    "raw_mesh",
                    "registered_preview_url",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # Only the name is staff's to edit: the rest is the request as made and what the pipeline
        # wrote, and a whole-row save would overwrite a running job's progress with a stale copy.
        computed = [
            "api_status",
            "glb",
            "preview",
            "model_and_preview",
            "stage_times",
            "step_times",
        ]
        return [field.name for field in Job._meta.fields if field.name != "name"] + computed

    def get_changelist_form(self, request, **kwargs):
        # A form of the editable column only, not of every field of the model.
        return super().get_changelist_form(request, fields=self.list_editable, **kwargs)

    def has_add_permission(self, request):
        return False  # jobs come through the API, which queues them

    def save_model(self, request, obj, form, change):
        clients.rename_job(obj, form.cleaned_data["name"])

    def delete_model(self, request, obj):
        clients.delete_job(obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            clients.delete_job(job)

    @admin.display(description="id", ordering="id")
    def short_id(self, job):
        return str(job.pk)[:8]

    @admin.display(description="status", ordering="state")
    def api_status(self, job):
        return JOB_API_STATUS[job.state]

    @admin.display(description="state", ordering="state")
    def internal_state(self, job):
        return job.state

    @admin.display(description="owner", ordering="user__email")
    def owner(self, job):
        return job.user or "—"

    @admin.display(description="prompt")
    def short_prompt(self, job):
        return Truncator(job.prompt or "").chars(60)

    @admin.display(description="stage times")
    def stage_times(self, job):
        """Each stage the last attempt ran, on which worker, in order."""
        runs = [
            f"{run['stage']} {run['seconds']:.2f} s on {run['worker']}" for run in job.stage_runs
        ]
        return " · ".join(runs) or "—"

    @admin.display(description="step times")
    def step_times(self, job):
        """Each step of the last attempt, and the share of model calls (GPU time) in them."""
        if not job.step_seconds:
            return "—"
        total = sum(job.step_seconds.values())
        models = sum(seconds for step, seconds in job.step_seconds.items() if step in MODEL_STEPS)
        in_order = sorted(job.step_seconds.items(), key=lambda item: list(Step).index(item[0]))
        steps = " · ".join(f"{step} {seconds:.2f} s" for step, seconds in in_order)
        return f"{steps} — model calls {models / total:.0%} of {total:.2f} s" if total else steps

    @admin.display(description="GLB")
    def glb(self, job):
        return _new_tab_link(storage.url(job.result_glb), "GLB")

    @admin.display(description="preview")
    def preview(self, job):
        return _new_tab_link(preview_url(job), "preview")

    @admin.display(description="model and preview")
    def model_and_preview(self, job):
        """The GLB in a 3D viewer (drag to turn it), beside the preview image."""
        glb, preview = storage.url(job.result_glb), preview_url(job)
        if not glb and not preview:
            return "—"
        viewer = (
            format_html(
                '<script type="module" src="{}"></script>'
                '<model-viewer src="{}" alt="The job\'s model" loading="eager" camera-controls '
                'interaction-prompt="none" shadow-intensity="1" '
                # An empty progress bar: the model is small, and a still page shows no half-faded
                # bar.
                'style="width: 320px; height: 320px; background: '
                '#f4f4f2"><div slot="progress-bar"></div></model-viewer>',
                static(MODEL_VIEWER_SCRIPT),
                glb,
            )
            if glb
            else ""
        )
        image = (
            format_html(
                '<img src="{}" alt="preview" style="max-width: 320px; max-height: 320px">', preview
            )
            if preview
            else ""
        )
        return format_html(
            '<div style="display: flex; gap: 16px; align-items: flex-start">{}{}</div>',
            viewer,
            image,
        )

    @admin.action(description="Requeue selected jobs (running ones only when stuck)")
    def requeue(self, request, queryset):
        self._report(request, [staff.requeue_by_staff(job) for job in queryset])

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request, queryset):
        self._report(request, [staff.cancel_by_staff(job) for job in queryset])

    def _report(self, request, outcomes):
        level = messages.WARNING if NOT_DONE & set(outcomes) else messages.SUCCESS
        self.message_user(request, staff.StaffOutcome.summary(outcomes), level)
