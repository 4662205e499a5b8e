"""Why a job ended unsuccessfully (``Job.error_code``, the spec's ``errorCode``), for programs.

Django-free, so that the generation pipelines name their cancellation with the same word as the
services. The pipelines' own failures (``INVALID_IMAGE``, ``MODEL_ERROR``, ``GPU_OUT_OF_MEMORY``)
are defined with their exceptions in ``generation.pipelines.errors``.
"""

CANCELLED = "CANCELLED"
WORKER_LOST = "WORKER_LOST"
IMAGE_URL_FORBIDDEN = "IMAGE_URL_FORBIDDEN"
IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
IMAGE_FETCH_FAILED = "IMAGE_FETCH_FAILED"
IMAGE_INVALID = "IMAGE_INVALID"
