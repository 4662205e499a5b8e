"""What ``requeue_jobs`` and ``cancel_jobs`` share: picking jobs by id and filters, and reporting
one line per job and a summary. Django skips this module as a command (leading underscore)."""

import argparse
import re
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from jobs import selectors
from jobs.models import JOB_API_STATUS
from jobs.services.staff import StaffOutcome

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(value: str) -> timedelta:
    """``90`` or ``90s``, ``30m``, ``2h``, ``1d``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 30m, 2h or 1d")
    return timedelta(**{UNITS[match[2] or "s"]: int(match[1])})


def job_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id") from None


def status(value: str) -> tuple[str, ...]:
    try:
        return selectors.states_for_status(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class StaffJobsCommand(BaseCommand):
    """A subclass acts on one job in ``act``, and may add filters in ``filters``."""

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=job_id, metavar="JOB_ID")
        parser.add_argument(
            "--status", type=status, default=(), help="WAIT, RUN, DONE, FAIL or an internal state"
        )
        parser.add_argument(
            "--older-than",
            type=duration,
            metavar="AGE",
            help="created more than AGE ago: 30m, 2h, 1d",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be done, change nothing"
        )

    def filters(self, options) -> dict:
        """Keyword arguments for ``selectors.jobs_for_staff`` beyond ids, status and age."""
        return {}

    def act(self, job, *, dry_run: bool, options):
        raise NotImplementedError

    def handle(self, *args, ids, status, older_than, dry_run, **options):
        filters = self.filters(options)
        if not (ids or status or older_than is not None or filters):
            raise CommandError("Name jobs by id or filter them; refusing to act on every job.")
        unknown = selectors.unknown_job_ids(ids)
        if unknown:
            raise CommandError(f"No such job: {', '.join(map(str, unknown))}")
        jobs = selectors.jobs_for_staff(ids=ids, states=status, older_than=older_than, **filters)
        outcomes = []
        for job in jobs:
            was = f"{job.pk} {job.kind} {JOB_API_STATUS[job.state]} ({job.state})"
            outcome = self.act(job, dry_run=dry_run, options=options)
            self.stdout.write(f"{was}: {'would be ' if dry_run else ''}{outcome}")
            outcomes.append(outcome)
        prefix = "Dry run, nothing changed; would be: " if dry_run else ""
        self.stdout.write(f"{prefix}{StaffOutcome.summary(outcomes)}")
