"""Errors a generation run reports, each with a stable ``code`` (``jobs.error_codes``) and a message
a user can act on."""

import PIL
import PIL.Image

from jobs.error_codes import ErrorCode


class GenerationError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class _KnownError(GenerationError):
    """A GenerationError whose code is fixed by its class; ``code`` is readable on the class too."""

    code: str
    default_message: str

    def __init__(self, message: str | None = None):
        super().__init__(self.code, message or self.default_message)
        # Exceptions pickle as ``cls(*args)``: keep args matching this constructor (Celery pickles
        # them).
        self.args = (self.message,)


class BadInputImage(_KnownError):
    code = ErrorCode.INVALID_IMAGE
    default_message = (
        "The image could not be used. Upload a sharp PNG or JPEG photo of a single object "
        "on a plain background."
    )


class ModelError(_KnownError):
    code = ErrorCode.MODEL_ERROR
    default_message = (
        "The model failed to produce a result. Try again, or try another prompt or image."
    )


class OutOfGPUMemory(_KnownError):
    code = ErrorCode.GPU_OUT_OF_MEMORY
    default_message = "The GPU ran out of memory. Try again later, or ask for fewer faces."


class JobCancelled(_KnownError):
    code = ErrorCode.CANCELLED
    default_message = "The job was cancelled."


def classify(exc: BaseException) -> GenerationError:
    """Map any exception raised during a run to the GenerationError to report."""
    if isinstance(exc, GenerationError):
        return exc
    # torch.cuda.OutOfMemoryError is a RuntimeError saying "CUDA out of memory", and other
    # backends (MPS, cuDNN) raise plain RuntimeErrors saying "out of memory": the message covers
    # all.
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return OutOfGPUMemory()
    if isinstance(
        exc, (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError)
    ) or _raised_by_pil(exc):
        return BadInputImage("The image file could not be read. Upload a valid PNG or JPEG file.")
    return ModelError(
        f"The model failed ({type(exc).__name__}). Try again, or try another prompt or image."
    )


def _raised_by_pil(exc: BaseException) -> bool:
    """Whether the innermost frame of the traceback is Pillow's code (truncated files, bad
    modes...)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "").startswith("PIL.")
