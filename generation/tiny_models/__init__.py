"""Tiny, randomly initialised checkpoints of the real pipelines, for tests and local runs.

They are built offline in seconds with the same classes and file layout as the production
checkpoints, so the pipelines load them through the very same ``from_pretrained`` calls. One module
per model family; importing this package itself imports no torch (the registry reads ``FOLDERS``).
"""

import fcntl
import logging
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

SEED = 0
# Each model's folder in a build, by role: the text-to-image model, then the image-to-3D backends
# (None for a backend that needs no weights at all).
FOLDERS = {
    "text-to-image": "text-to-image",
    "shap-e": "shap-e-img2img",
    "hunyuan3d": "hunyuan3d",
    "silhouette": None,
}


def build_tiny_models(directory: Path) -> None:
    """Save every tiny model in its folder under ``directory``; Hunyuan3D-2's where its optional
    package hy3dgen can be imported."""
    from generation.pipelines.image_to_3d.hunyuan3d import hy3dgen_importable

    from . import hunyuan3d, shap_e, text_to_image

    text_to_image.build(directory / FOLDERS["text-to-image"])
    shap_e.build(directory / FOLDERS["shap-e"])
    if hy3dgen_importable():
        hunyuan3d.build(directory / FOLDERS["hunyuan3d"])


def ensure_tiny_models(target: Path, *, rebuild: bool = False) -> Path:
    """Build the tiny models into ``target`` unless a finished build is there. Concurrent workers
    wait for one build, and a build that dies halfway is never mistaken for a finished one."""
    marker = target / "complete"
    if marker.exists() and not rebuild:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild or not marker.exists():
            logger.warning("No model weights configured: building tiny random models in %s", target)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tiny-"))
            build_tiny_models(staging)
            (staging / marker.name).touch()
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return target
