"""The base of every app's exception for a service it needs that cannot be reached (jobs.storage's
``StorageUnavailable``): whichever view meets one, the API answers the spec's 503, never a 500
(hydrilla.errors). Django-free, so that the workers that raise these load no HTTP code."""


class Outage(Exception):
    """A backing service refused or could not be reached."""
