"""Tencent's Hunyuan3D-2 shape model (image conditioned), through its ``hy3dgen`` package.

Hunyuan3D-2 comes under Tencent's own licence, with limits on where and by whom it may be used: read
docs/backends.md before offering it. Only the shape model is used (no texture), so meshes come out
uncoloured.
"""

import math
from pathlib import Path

import PIL.Image
import torch
import trimesh

from ..denoising import OnDenoisingStep, releases_device_memory, report_forward_passes
from ..errors import ModelError
from .base import ImageTo3DBackend

DEFAULT_SUBFOLDER = "hunyuan3d-dit-v2-0"


class Hunyuan3DBackend(ImageTo3DBackend):
    """Registered in ``image_to_3d/__init__.py`` only where hy3dgen is installed."""

    name = "hunyuan3d"

    def __init__(
        self,
        pipe,
        device: torch.device,
        *,
        steps: int = 50,
        guidance_scale: float = 5.0,
        octree_resolution: int = 384,
        num_chunks: int = 8000,
    ):
        """``pipe`` is a ``hy3dgen.shapegen.Hunyuan3DDiTFlowMatchingPipeline``; the options are its
        own
        defaults. ``octree_resolution``: marching-cubes cells per axis (cost grows with its cube);
        ``num_chunks``: query points per pass of the volume decoder (more is faster, needs more
        memory).
        """
        self.pipe = pipe
        self.device = device
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.octree_resolution = octree_resolution
        self.num_chunks = num_chunks

    @classmethod
    def load(
        cls,
        model: str,
        device: torch.device,
        dtype: torch.dtype,
        *,
        subfolder: str = DEFAULT_SUBFOLDER,
        **options,
    ) -> "Hunyuan3DBackend":
        """``model`` is a folder holding ``subfolder`` (a local folder wins) or a hub id such as
        ``tencent/Hunyuan3D-2``; ``subfolder`` picks the checkpoint (``hunyuan3d-dit-v2-0-turbo``,
        ...)."""
        pipe = _pipeline_class().from_pretrained(
            _model_path(model, subfolder), subfolder=subfolder, device=device, dtype=dtype
        )
        return cls(pipe, device, **options)

    @releases_device_memory
    def __call__(
        self,
        image_rgba: PIL.Image.Image,
        seed: int,
        on_denoising_step: OnDenoisingStep | None = None,
    ) -> trimesh.Trimesh:
        # hy3dgen reports sampling steps through its callback, but volume decoding (thousands of
        # decoder passes over the octree grid) only through the decoder's forward passes: each phase
        # gets half of the progress, and every pass is a point where a cancelled job stops.
        decoder_passes = math.ceil((self.octree_resolution + 1) ** 3 / self.num_chunks)
        with report_forward_passes(
            self.pipe.vae.geo_decoder, lambda: decoder_passes, _half(on_denoising_step, 1)
        ):
            meshes = self.pipe(
                # RGBA: hy3dgen recentres the object by its alpha channel and puts it on white
                # itself.
                image=image_rgba,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                octree_resolution=self.octree_resolution,
                num_chunks=self.num_chunks,
                generator=torch.Generator(device=self.device).manual_seed(seed),
                output_type="trimesh",
                enable_pbar=False,
                callback=_sampling_callback(_half(on_denoising_step, 0), self.steps)
                if on_denoising_step
                else None,
                callback_steps=1,
            )
        # hy3dgen swallows a failed surface extraction (no surface crosses the level) and returns
        # None.
        if meshes[0] is None:
            raise ModelError(
                "The model produced an empty shape. Try again with another seed or image."
            )
        # y-up already: hy3dgen's own app writes these meshes to GLB unturned. Its export winds them
        # outwards.
        return meshes[0]


def hy3dgen_importable() -> bool:
    """Whether hy3dgen imports here: installed, with a torchvision built for this torch. Imports
    it."""
    try:
        _pipeline_class()
    except ImportError:
        return False
    return True


def _pipeline_class():
    try:
        from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline
    except (
        ImportError,
        RuntimeError,
    ) as exc:  # a torchvision built for another torch fails with RuntimeError
        raise ImportError(
            "The hunyuan3d backend needs hy3dgen and what "
            "it imports (requirements/hunyuan3d.txt and "
            f"hunyuan3d-no-deps.txt), with a torchvision built for torch {torch.__version__}"
        ) from exc
    return Hunyuan3DDiTFlowMatchingPipeline


def _model_path(model: str, subfolder: str) -> str:
    """What to pass hy3dgen as ``model_path``.

    hy3dgen looks for ``$HY3DGEN_MODELS/<model_path>/<subfolder>`` (default ``~/.cache/hy3dgen``)
    and
    otherwise downloads ``model_path`` from the hub; an absolute path replaces that base folder, so
    a
    local folder is passed absolute and checked here, where the error can still say what is missing.
    """
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return model
    if not (folder / subfolder).is_dir():
        raise FileNotFoundError(
            f"{folder} has no {subfolder!r} folder; set the subfolder of the checkpoint to use"
        )
    return str(folder.resolve())


def _half(on_denoising_step: OnDenoisingStep | None, half: int) -> OnDenoisingStep | None:
    """Report a phase's ``done`` of ``total`` in the first (0) or second (1) half of the stage."""
    if on_denoising_step is None:
        return None
    return lambda done, total: on_denoising_step(half * total + done, 2 * total)


def _sampling_callback(on_denoising_step: OnDenoisingStep, total_steps: int):
    """Adapt ``on_denoising_step`` to hy3dgen's
    ``callback(step_index, timestep, scheduler_output)``.

    hy3dgen calls it after every ``callback_steps``-th step with the step's 0-based index.
    """

    def callback(step_index, timestep, outputs):
        on_denoising_step(step_index + 1, total_steps)

    return callback
