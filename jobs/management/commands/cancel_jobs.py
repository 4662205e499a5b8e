from django.core.management.base import CommandError

from jobs.management.commands._staff import StaffJobsCommand
from jobs.models import ACTIVE_STATES
from jobs.services import staff


class Command(StaffJobsCommand):
    help = "Cancel waiting jobs at once; ask running ones to stop at their next step."

    def handle(self, *args, status, **options):
        if status and not set(status) & set(ACTIVE_STATES):
            raise CommandError(
                f"Jobs in {', '.join(status)} have already ended: nothing to cancel."
            )
        super().handle(*args, status=status, **options)

    def act(self, job, *, dry_run, options):
        return staff.cancel_by_staff(job, dry_run=dry_run)
