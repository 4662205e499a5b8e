"""CUDA must never be initialised in the worker's parent process, which Celery forks: a forked
child cannot use a CUDA context it inherited. Models load in the child (generation.registry)."""

import textwrap

import pytest

from tests.helpers.processes import fresh_python

# On the GPU image's packages: there torch is a CUDA build, whose context a fork would break.
pytestmark = pytest.mark.gpu_image

PARENT_STARTUP = textwrap.dedent(
    """
    import torch.cuda

    initialised = []
    torch.cuda._lazy_init = lambda: initialised.append(True)  # every CUDA use goes through it

    import celery_app
    celery_app.app.loader.import_default_modules()  # what the worker's parent imports: the tasks
    import generation.tasks
    from generation import registry
    registry.device()  # the parent may ask which device there is, without touching CUDA
    print("initialised" if initialised or torch.cuda.is_initialized() else "clean")
    """
)


@pytest.mark.parametrize(
    "gpu_devices", ["", "0,1,2,3"]
)  # one child per GPU, each pinned: still clean
def test_the_worker_parent_never_initialises_cuda(gpu_devices):
    last_line = fresh_python(
        PARENT_STARTUP, DJANGO_SETTINGS_MODULE="hydrilla.settings", GPU_DEVICES=gpu_devices
    )

    assert last_line == "clean"
