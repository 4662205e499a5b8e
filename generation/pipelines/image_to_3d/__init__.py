"""Image-to-3D backends, picked by name: ``load_backend("shap-e", model, device, dtype,
**options)``."""

import importlib.util

from . import shap_e, silhouette  # noqa: F401  (registers the backends)
from .base import BACKENDS, ImageTo3DBackend, load_backend, register_backend

# Hunyuan3D-2 needs its optional package (requirements/hunyuan3d*.txt). Finding the package imports
# nothing: hy3dgen itself pulls in torchvision, OpenCV and more, and is imported when the model
# loads.
if importlib.util.find_spec("hy3dgen") is not None:
    from .hunyuan3d import Hunyuan3DBackend

    register_backend(Hunyuan3DBackend)

__all__ = ["BACKENDS", "ImageTo3DBackend", "load_backend", "register_backend"]
