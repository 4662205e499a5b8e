"""The tests' helpers, one module per concern; each name is imported from its own module.

jobs (jobs driven as their workers would), watch (the web process's job watcher), events (Server-
Sent Events), schema (responses against the OpenAPI schema), clock (jobs in the past), job_api
(its upload, its job records' fields), storage (S3), broker (its queues), network (loopback
ports), processes (real worker and server processes), images (image files), pipelines and meshes
(the generation library's inputs and outputs), metrics (samples of this process's metrics,
promtool)."""
