"""Why a job ended unsuccessfully (``Job.error_code``, the spec's ``errorCode``), for programs:
every code the service writes, each once, with its meaning.

Django-free, so that the generation pipelines name their failures with the same words as the
services. The OpenAPI schema lists the codes as the ``errorCode`` enum, each with its meaning
(``CHOICES``); the message beside a code (``errorMessage``) says the same to a person, with the
particulars.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    meaning: str

    def __new__(cls, code: str, meaning: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    CANCELLED = "CANCELLED", "The job was cancelled, by its owner or by staff."
    WORKER_LOST = (
        "WORKER_LOST",
        "The worker running the job stopped answering and staff released the job; requeueing it "
        "runs it again.",
    )
    IMAGE_URL_FORBIDDEN = (
        "IMAGE_URL_FORBIDDEN",
        "The image URL is not one the service fetches: not http(s), with credentials, or to a "
        "host that is not public.",
    )
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE", "The image at the URL is larger than the upload limit."
    IMAGE_FETCH_FAILED = "IMAGE_FETCH_FAILED", "The image URL could not be downloaded."
    INVALID_IMAGE = (
        "INVALID_IMAGE",
        "The image could not be read, or shows no object that can be cut out of its background.",
    )
    MODEL_ERROR = "MODEL_ERROR", "A model failed to produce a result."
    GPU_OUT_OF_MEMORY = (
        "GPU_OUT_OF_MEMORY",
        "The GPU ran out of memory, again when the model call was tried a second time.",
    )
    STORAGE_ERROR = (
        "STORAGE_ERROR",
        "A file of the job could not be read from or written to storage.",
    )
    TIMEOUT = "TIMEOUT", "A stage of the job ran longer than the time limit and was stopped."


# (code, meaning) pairs, as Django and DRF take choices.
CHOICES = [(code.value, code.meaning) for code in ErrorCode]
