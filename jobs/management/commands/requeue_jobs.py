from django.conf import settings

from jobs.management.commands._staff import StaffJobsCommand, duration
from jobs.services import staff


class Command(StaffJobsCommand):
    help = (
        "Requeue jobs from a clean slate (attempts are kept). A running job is refused unless it "
        "is stuck; a stuck one is released first."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--stuck",
            action="store_true",
            help="only jobs running, or waiting to be picked up, for longer than --stuck-after",
        )
        parser.add_argument(
            "--stuck-after",
            type=duration,
            metavar="AGE",
            help="when a running or waiting job counts as stuck (default: the hard time limit, "
            f"{settings.JOB_HARD_TIME_LIMIT_SECONDS}s)",
        )

    def filters(self, options):
        # --stuck-after alone is no filter: it also says when a job named by id counts as stuck.
        return {"stuck": True, "stuck_after": options["stuck_after"]} if options["stuck"] else {}

    def act(self, job, *, dry_run, options):
        return staff.requeue_by_staff(job, stuck_after=options["stuck_after"], dry_run=dry_run)
