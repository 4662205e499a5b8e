"""The models of this worker process: chosen by configuration, loaded once, kept warm.

Loading happens on first use inside the worker's child process, never at import, so the parent
that Celery forks from never initialises CUDA.
"""

import functools
import logging
import os
import time
from pathlib import Path

from django.conf import settings

from generation import tiny_models
from hydrilla import metrics

logger = logging.getLogger(__name__)


def pin_to_gpu(pool_index: int) -> str | None:
    """Give this worker child one GPU of ``GPU_DEVICES`` — child ``i`` the ``i``-th, a child that
    replaces it the same one — by setting ``CUDA_VISIBLE_DEVICES`` before CUDA is initialised:
    CUDA then shows it as the only device, ``cuda:0``. Returns the device, or None without a
    list."""
    if not settings.GPU_DEVICES:
        return None
    gpu = settings.GPU_DEVICES[pool_index % len(settings.GPU_DEVICES)]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    logger.info("Pool process %d (pid %d) uses GPU %s", pool_index, os.getpid(), gpu)
    return gpu


@functools.cache
def device():
    from generation.pipelines import select_device

    return select_device(settings.TORCH_DEVICE or None)


@functools.cache
def dtype():
    from generation.pipelines import select_dtype

    return select_dtype(device(), settings.TORCH_DTYPE or None)


# Test mode (jobs made with a test API key): the weight-free path, on the CPU of whichever worker
# runs the stage (a CPU worker: jobs.plan never sends a test job to a GPU), whatever the settings.
TEST_MODE_IMAGE_TO_3D_BACKEND = "silhouette"


def _placement(test_mode: bool):
    """The device and dtype a model runs on: the CPU in full precision in test mode."""
    if not test_mode:
        return device(), dtype()
    from generation.pipelines import select_device, select_dtype

    cpu = select_device("cpu")
    return cpu, select_dtype(cpu)


def _timed_load(model: str):
    """Count each load of ``model`` and its seconds (``hydrilla_model_load_seconds``)."""

    def decorate(load):
        @functools.wraps(load)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            pipeline = load(*args, **kwargs)
            metrics.MODEL_LOADS.labels(model=model).inc()
            metrics.MODEL_LOAD_SECONDS.labels(model=model).observe(time.perf_counter() - began)
            return pipeline

        return timed

    return decorate


@functools.cache
@_timed_load("text-to-image")
def text_to_image_pipeline(test_mode: bool = False):
    """The text-to-image model: ``TEXT_TO_IMAGE_MODEL``, else (and always in test mode) the tiny
    random one."""
    from generation.pipelines import TextToImagePipeline

    tiny = str(tiny_models_dir() / tiny_models.FOLDERS["text-to-image"])
    model = tiny if test_mode else settings.TEXT_TO_IMAGE_MODEL or tiny
    on, as_dtype = _placement(test_mode)
    logger.info("Loading text-to-image model %s on %s (%s)", model, on, as_dtype)
    options = {
        "steps": settings.TEXT_TO_IMAGE_STEPS,
        "guidance_scale": settings.TEXT_TO_IMAGE_GUIDANCE,
        "size": settings.TEXT_TO_IMAGE_SIZE,
    }
    return TextToImagePipeline.load(
        model, on, as_dtype, **({} if test_mode else _configured(options))
    )


@functools.cache
@_timed_load("image-to-3d")
def image_to_3d_pipeline(test_mode: bool = False):
    """The image-to-3D backend: ``IMAGE_TO_3D_BACKEND`` with ``IMAGE_TO_3D_MODEL`` (or its tiny
    model); in test mode the weight-free silhouette backend."""
    from generation.pipelines import load_backend

    backend = TEST_MODE_IMAGE_TO_3D_BACKEND if test_mode else settings.IMAGE_TO_3D_BACKEND
    tiny = tiny_models.FOLDERS[backend]
    model = None if test_mode else settings.IMAGE_TO_3D_MODEL
    model = model or (str(tiny_models_dir() / tiny) if tiny else None)
    on, as_dtype = _placement(test_mode)
    logger.info(
        "Loading image-to-3D backend %s (%s) on %s (%s)",
        backend,
        model or "no weights",
        on,
        as_dtype,
    )
    return load_backend(backend, model, on, as_dtype, **_configured(_backend_options(backend)))


def _backend_options(backend: str) -> dict:
    """Each backend's options from the settings: only the knobs that backend has."""
    sampling = {
        "steps": settings.IMAGE_TO_3D_STEPS,
        "guidance_scale": settings.IMAGE_TO_3D_GUIDANCE,
    }
    if backend == "hunyuan3d":
        return sampling | {
            "subfolder": settings.HUNYUAN3D_SUBFOLDER,
            "octree_resolution": settings.HUNYUAN3D_OCTREE_RESOLUTION,
            "num_chunks": settings.HUNYUAN3D_NUM_CHUNKS,
        }
    return sampling | {"grid_size": settings.MESH_GRID_SIZE}


def _configured(options: dict) -> dict:
    """Only the options that are set: the rest keep the model's own defaults."""
    return {name: value for name, value in options.items() if value is not None}


LOADERS = {"text-to-image": text_to_image_pipeline, "image-to-3d": image_to_3d_pipeline}


def backend(model: str, *, test_mode: bool = False) -> str:
    """What a model call of ``model`` ("text-to-image", "image-to-3d") runs, as the
    ``backend`` label of ``hydrilla_model_call_seconds``: the diffusion pipeline, or the
    image-to-3D backend (silhouette, shap-e, hunyuan3d) configured, or test mode's."""
    if model == "text-to-image":
        return model
    return TEST_MODE_IMAGE_TO_3D_BACKEND if test_mode else settings.IMAGE_TO_3D_BACKEND


def tiny_models_dir() -> Path:
    """The tiny random models, built once per machine when no weights are configured."""
    return tiny_models.ensure_tiny_models(Path(settings.TINY_MODELS_DIR))
