"""OpenAI's Shap-E (image conditioned), through diffusers' ShapEImg2ImgPipeline."""

from pathlib import Path

import numpy as np
import PIL.Image
import torch
import trimesh

from ..denoising import OnDenoisingStep, releases_device_memory, report_forward_passes
from ..foreground import composite_on_background
from .base import ImageTo3DBackend, register_backend

# Shap-E meshes are z-up; glTF is y-up. A -90 degree turn about x maps z to y (and keeps the
# winding).
Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


@register_backend
class ShapEBackend(ImageTo3DBackend):
    name = "shap-e"

    def __init__(
        self,
        pipe,
        device: torch.device,
        *,
        steps: int = 64,
        guidance_scale: float = 3.0,
        grid_size: int = 128,
    ):
        """``grid_size``: marching-cubes resolution per axis (cost grows with its cube)."""
        self.pipe = pipe
        self.device = device
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.grid_size = grid_size

    @classmethod
    def load(
        cls, model: str, device: torch.device, dtype: torch.dtype, **options
    ) -> "ShapEBackend":
        from diffusers import ShapEImg2ImgPipeline

        pipe = ShapEImg2ImgPipeline.from_pretrained(
            model, dtype=dtype, local_files_only=Path(model).is_dir()
        )
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, device, **options)

    @releases_device_memory
    def __call__(
        self,
        image_rgba: PIL.Image.Image,
        seed: int,
        on_denoising_step: OnDenoisingStep | None = None,
    ) -> trimesh.Trimesh:
        # The pipeline has no step callback: count the prior's forward passes instead
        # (Heun's method evaluates it twice per step but the last, so 2 * steps - 1 in all).
        with report_forward_passes(
            self.pipe.prior, lambda: len(self.pipe.scheduler.timesteps), on_denoising_step
        ):
            latents = self.pipe(
                # Shap-E takes RGB, and its reference inputs are objects on white.
                composite_on_background(image_rgba),
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=torch.Generator(device=self.device).manual_seed(seed),
                output_type="latent",
            ).images
        # output_type="mesh" would decode at the renderer's default grid of 128; decode here to
        # choose it.
        renderer = self.pipe.shap_e_renderer
        decoded = renderer.decode_to_mesh(latents[0][None], self.device, grid_size=self.grid_size)
        return mesh_from_decoder(decoded).apply_transform(Z_UP_TO_Y_UP)


def mesh_from_decoder(decoded) -> trimesh.Trimesh:
    """A trimesh of Shap-E's decoded mesh (``MeshDecoderOutput``), in its own z-up frame.

    The renderer converts its colours to linear RGB, which is what glTF's COLOR_0 holds.
    """
    colours = torch.stack([decoded.vertex_channels[channel] for channel in "RGB"], dim=1)
    return trimesh.Trimesh(
        vertices=decoded.verts.cpu().numpy(),
        faces=decoded.faces.cpu().numpy(),
        vertex_colors=(colours.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8),
    )
