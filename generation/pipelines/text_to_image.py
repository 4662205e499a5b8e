"""Text prompt to object image, through any diffusers text-to-image checkpoint."""

from dataclasses import dataclass, replace
from pathlib import Path

import PIL.Image
import torch

from .denoising import OnDenoisingStep, diffusers_step_callback, releases_device_memory

# A single centred object on a plain background gives a clean cut-out and a better 3D
# reconstruction.
OBJECT_PROMPT_SUFFIX = (
    ", a single object, centered, full view, plain white background, studio lighting"
)


@dataclass(frozen=True)
class Sampling:
    steps: int
    guidance_scale: float
    size: int | None  # None: the pipeline's own default size


# Checked in order against the lower-cased model id or folder: all fragments of an entry must occur.
MODEL_FAMILIES: tuple[tuple[tuple[str, ...], Sampling], ...] = (
    # Adversarially distilled: a few steps, and classifier-free guidance must be off.
    (("sdxl-turbo",), Sampling(steps=4, guidance_scale=0.0, size=512)),
    (("sd-turbo",), Sampling(steps=4, guidance_scale=0.0, size=512)),
    (("hunyuandit", "distilled"), Sampling(steps=25, guidance_scale=5.0, size=1024)),
    (("hunyuandit",), Sampling(steps=50, guidance_scale=5.0, size=1024)),
)
GENERIC_SAMPLING = Sampling(steps=25, guidance_scale=7.5, size=None)


def sampling_for(model: str) -> Sampling:
    name = model.lower()
    for fragments, sampling in MODEL_FAMILIES:
        if all(fragment in name for fragment in fragments):
            return sampling
    return GENERIC_SAMPLING


class TextToImagePipeline:
    """Wraps one loaded diffusers pipeline; load once per process and call it for every job."""

    def __init__(
        self,
        pipe,
        device: torch.device,
        model: str,
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        size: int | None = None,
    ):
        self.pipe = pipe
        self.device = device
        overrides = {"steps": steps, "guidance_scale": guidance_scale, "size": size}
        self.sampling = replace(
            sampling_for(model), **{k: v for k, v in overrides.items() if v is not None}
        )

    @classmethod
    def load(
        cls, model: str, device: torch.device, dtype: torch.dtype, **options
    ) -> "TextToImagePipeline":
        """``model`` is a local folder or a hub id; ``options`` are the constructor's overrides."""
        from diffusers import AutoPipelineForText2Image

        pipe = AutoPipelineForText2Image.from_pretrained(
            model, dtype=dtype, local_files_only=Path(model).is_dir()
        )
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, device, model, **options)

    @releases_device_memory
    def __call__(
        self,
        prompt: str,
        seed: int,
        on_denoising_step: OnDenoisingStep | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> PIL.Image.Image:
        result = self.pipe(
            prompt=prompt + OBJECT_PROMPT_SUFFIX,
            num_inference_steps=self.sampling.steps,
            guidance_scale=self.sampling.guidance_scale,
            width=width or self.sampling.size,
            height=height or self.sampling.size,
            generator=torch.Generator(device=self.device).manual_seed(seed),
            callback_on_step_end=diffusers_step_callback(on_denoising_step)
            if on_denoising_step
            else None,
        )
        return result.images[0]
