"""Every write to a job, and every change of its state, happens here, in a module per caller:
``clients`` (the API's requests), ``staff`` (admin, management commands, housekeeping) and
``workers`` (a job's stages and the sweeps); ``shared`` is what they have in common.

State changes are single conditional UPDATEs (``… WHERE state = 'pending'``), so two workers, or a
cancel racing a finish, cannot both win. Worker-side writes also carry the lease that claimed the
stage: a worker that lost its stage to a redelivery can no longer write to the job.
"""
