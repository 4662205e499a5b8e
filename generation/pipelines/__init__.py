"""Django-free generation library: text to image, cut-out, image to 3D, and textured GLB packaging.

Each model is wrapped in an object that is loaded once per process (``load``) and then called for
every job. Pick the device and dtype with ``select_device`` / ``select_dtype`` in the worker
process.
diffusers is imported inside the ``load`` methods: it takes seconds, and only model-loading
processes need it.
"""

from .denoising import OnDenoisingStep
from .device import select_device, select_dtype
from .errors import (
    BadInputImage,
    GenerationError,
    JobCancelled,
    ModelError,
    OutOfGPUMemory,
    classify,
)
from .foreground import composite_on_background, cut_out
from .image_to_3d import BACKENDS, ImageTo3DBackend, load_backend, register_backend
from .mesh import (
    DEFAULT_FACE_COUNT,
    GENERATE_TYPES,
    finish_mesh,
    load_source_mesh,
    prepare_mesh,
    save_source_mesh,
)
from .text_to_image import TextToImagePipeline

__all__ = [
    "BACKENDS",
    "DEFAULT_FACE_COUNT",
    "GENERATE_TYPES",
    "BadInputImage",
    "GenerationError",
    "ImageTo3DBackend",
    "JobCancelled",
    "ModelError",
    "OnDenoisingStep",
    "OutOfGPUMemory",
    "TextToImagePipeline",
    "classify",
    "composite_on_background",
    "cut_out",
    "finish_mesh",
    "load_backend",
    "load_source_mesh",
    "prepare_mesh",
    "register_backend",
    "save_source_mesh",
    "select_device",
    "select_dtype",
]
