"""The queue figures, computed once per ``QUEUE_SECONDS`` for the whole deployment, not once per
web process.

Each web process asks for them every ``QUEUE_SECONDS`` (jobs.watch). Whichever asks first takes
the lease (an atomic ``cache.add`` that expires after ``QUEUE_SECONDS``), computes them
(``selectors.queue_standings``: four queries whatever the queue's length) and stores them in the
cache; the others read them from there. With Redis as the cache (``CACHE_URL``) the database
answers those queries once per second for the deployment, however many web processes it has;
with the per-process memory cache (the embedded defaults) each process is its own deployment.

Places in line are counted for the waiting jobs that some process follows: each process adds
them to a set shared through the cache (each entry expiring unless renewed), and the process that
computes counts the places of all of them at once.
"""

import time
from datetime import datetime

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from jobs import selectors
from jobs.models import Job, JobState

QUEUE_SECONDS = 1.0
LEASE_KEY = "queue-figures:lease"
STANDINGS_KEY = "queue-figures:standings"
FOLLOWED_KEY = "queue-figures:followed"
# Figures older than this are not served: past it, a process computes its own.
STANDINGS_SECONDS = 10
# A followed waiting job not renewed for this long is no longer counted.
FOLLOWED_SECONDS = 5.0


def current(followed_waiting: list[Job]) -> selectors.QueueStandings:
    """The deployment's latest figures, computed here when this process takes the lease or
    nobody has stored any lately; ``followed_waiting`` are this process's waiting jobs."""
    cache = caches["default"]
    followed = _RedisFollowed(cache) if isinstance(cache, RedisCache) else _LOCAL_FOLLOWED
    followed.renew(followed_waiting)
    if not cache.add(LEASE_KEY, 1, int(QUEUE_SECONDS)):
        stored = cache.get(STANDINGS_KEY)
        if stored is not None:
            return stored
    standings = selectors.queue_standings(followed.members())
    cache.set(STANDINGS_KEY, standings, STANDINGS_SECONDS)
    return standings


def _member(job: Job) -> str:
    return f"{job.pk} {job.kind} {job.created_at.isoformat()}"


def _job(member: str) -> Job:
    """The part of a followed waiting job that its place depends on."""
    pk, kind, created_at = member.split(" ")
    return Job(
        pk=pk, kind=kind, state=JobState.PENDING, created_at=datetime.fromisoformat(created_at)
    )


class _RedisFollowed:
    """A sorted set in Redis: member → when it expires."""

    def __init__(self, cache: RedisCache) -> None:
        self.key = cache.make_and_validate_key(FOLLOWED_KEY)
        self.client = cache._cache.get_client(self.key, write=True)

    def renew(self, jobs: list[Job]) -> None:
        if jobs:
            expires = time.time() + FOLLOWED_SECONDS
            self.client.zadd(self.key, {_member(job): expires for job in jobs})

    def members(self) -> list[Job]:
        now = time.time()
        self.client.zremrangebyscore(self.key, "-inf", now)
        return [_job(member.decode()) for member in self.client.zrange(self.key, 0, -1)]


class _LocalFollowed:
    """This process's own jobs: the memory cache is no wider than the process."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def renew(self, jobs: list[Job]) -> None:
        self.jobs = list(jobs)

    def members(self) -> list[Job]:
        return self.jobs


_LOCAL_FOLLOWED = _LocalFollowed()
