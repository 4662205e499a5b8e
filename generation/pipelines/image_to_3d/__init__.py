"""Image-to-3D backends, picked by name: ``load_backend("shap-e", model, device, dtype, **options)``."""

from . import shap_e, silhouette  # noqa: F401  (registers the backends)
from .base import BACKENDS, ImageTo3DBackend, load_backend, register_backend

__all__ = ["BACKENDS", "ImageTo3DBackend", "load_backend", "register_backend"]
