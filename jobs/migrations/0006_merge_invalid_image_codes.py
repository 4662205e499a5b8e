from django.db import migrations

# A remote image that did not decode failed its job IMAGE_INVALID, an image the cut-out could not
# use INVALID_IMAGE: one code now, the latter (jobs.error_codes). Written out here, as a migration
# keeps the words of its time.
MERGED = {"IMAGE_INVALID": "INVALID_IMAGE"}


def merge_invalid_image_codes(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    for old, new in MERGED.items():
        Job.objects.filter(error_code=old).update(error_code=new)


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0005_job_stages"),
    ]

    operations = [
        # Nothing to undo: the two codes meant the same, and the code before this reads either.
        migrations.RunPython(merge_invalid_image_codes, migrations.RunPython.noop),
    ]
