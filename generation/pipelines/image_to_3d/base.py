"""The interface every image-to-3D model implements, and the registry that picks one by name."""

from abc import ABC, abstractmethod

import PIL.Image
import torch
import trimesh

from ..denoising import OnDenoisingStep


class ImageTo3DBackend(ABC):
    """One loaded image-to-3D model; load once per process and call it for every job."""

    name: str

    @classmethod
    @abstractmethod
    def load(
        cls, model: str, device: torch.device, dtype: torch.dtype, **options
    ) -> "ImageTo3DBackend":
        """``model`` is a local folder or a hub id; ``options`` are backend specific."""

    @abstractmethod
    def __call__(
        self,
        image_rgba: PIL.Image.Image,
        seed: int,
        on_denoising_step: OnDenoisingStep | None = None,
    ) -> trimesh.Trimesh:
        """Reconstruct the object of a cut-out (see ``foreground.cut_out``).

        Returns a y-up mesh (glTF's convention), with per-vertex colours when the model predicts
        them.
        """


BACKENDS: dict[str, type[ImageTo3DBackend]] = {}


def register_backend(backend: type[ImageTo3DBackend]) -> type[ImageTo3DBackend]:
    """Class decorator that makes a backend loadable by its ``name``."""
    BACKENDS[backend.name] = backend
    return backend


def load_backend(
    name: str, model: str, device: torch.device, dtype: torch.dtype, **options
) -> ImageTo3DBackend:
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"Unknown image-to-3D backend {name!r}; known: {sorted(BACKENDS)}"
        ) from None
    return backend.load(model, device, dtype, **options)
