from django.db import migrations, models

# The first stage of each kind of job, as jobs.stages had it when this migration was written.
FIRST_STAGES = {"image-to-3d": "prepare", "text-to-image": "preview", "remesh": "remesh"}


def put_waiting_jobs_at_their_first_stage(apps, schema_editor):
    """Waiting jobs were queued as one message per job: they get their first stage, and the
    sweep sends that stage's message (queued_at empty)."""
    Job = apps.get_model("jobs", "Job")
    waiting = Job.objects.filter(state="pending")
    for kind, stage in FIRST_STAGES.items():
        waiting.filter(kind=kind).update(stage=stage, queued_at=None)
    text_to_3d = waiting.filter(kind="text-to-3d")
    text_to_3d.exclude(preview_image="").update(stage="prepare", queued_at=None)
    text_to_3d.filter(preview_image="").update(stage="text_to_image", queued_at=None)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0004_job_queued_at_worker_process_stage_seconds'),
    ]

    operations = [
        migrations.RenameField(
            model_name='job',
            old_name='stage_seconds',
            new_name='step_seconds',
        ),
        migrations.AddField(
            model_name='job',
            name='raw_mesh',
            field=models.CharField(blank=True, max_length=512),
        ),
        migrations.AddField(
            model_name='job',
            name='stage',
            field=models.CharField(blank=True, choices=[('prepare', 'Prepare'), ('text_to_image', 'Text To Image'), ('image_to_3d', 'Image To 3D'), ('finish', 'Finish'), ('preview', 'Preview'), ('remesh', 'Remesh')], max_length=16),
        ),
        migrations.AddField(
            model_name='job',
            name='stage_runs',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(put_waiting_jobs_at_their_first_stage, migrations.RunPython.noop),
    ]
