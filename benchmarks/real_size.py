"""Real-size architectures with random weights, from the published configurations; nothing is
downloaded.

Random weights cost what trained ones cost wherever the work does not depend on their values: every
denoiser, encoder and decoder pass is the same arithmetic. It does depend on them where marching
cubes
meets the surface, so each 3D decoder is set to answer with one closed surface, as the tiny models
are (``generation.tiny_models``); the mesh is then a box (Shap-E) or a ball (Hunyuan3D-2), with as
many faces as a real object of that size, not a real object's shape.

Each builder saves a checkpoint that the pipelines load through their usual ``load``, so load times
are measured on the production path.
"""

from pathlib import Path

import torch

from generation.tiny_models import SEED
from generation.tiny_models.hunyuan3d import hunyuan3d_config, save_hunyuan3d_checkpoint
from generation.tiny_models.shap_e import shap_e_img2img_pipeline
from generation.tiny_models.text_to_image import (
    byte_level_clip_tokenizer,
    stable_diffusion_pipeline,
)

# stabilityai/sd-turbo (Stable Diffusion 2.1 architecture at 512 px).
SD_TURBO_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": (
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ),
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),
    "use_linear_projection": True,
}
SD_TURBO_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "sample_size": 768,
}
# OpenCLIP ViT-H/14's text tower, less its last layer (SD 2.x reads the penultimate layer).
SD_TURBO_TEXT_ENCODER = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
}

# openai/shap-e-img2img: CLIP ViT-L/14 image encoder, the image-conditioned prior, the default
# renderer.
SHAP_E_IMAGE_ENCODER = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
SHAP_E_PRIOR = {
    "num_attention_heads": 8,
    "attention_head_dim": 128,
    "num_layers": 24,
    "embedding_dim": 1024,
    "num_embeddings": 1024,
    "additional_embeddings": 0,
    "time_embed_act_fn": "gelu",
    "norm_in_type": "layer",
    "embedding_proj_norm_type": "layer",
    "encoder_hid_proj_type": None,
    "added_emb_type": None,
    "time_embed_dim": 4096,
    "embedding_proj_dim": 1024,
    "clip_embed_dim": 2048,
}

# tencent/Hunyuan3D-2, subfolder hunyuan3d-dit-v2-0: the 1.1B flow-matching DiT, the shape VAE and a
# DINOv2-giant image encoder.
HUNYUAN3D_2_CONFIG = hunyuan3d_config(
    dit={
        "in_channels": 64,
        "context_in_dim": 1536,
        "hidden_size": 1024,
        "mlp_ratio": 4.0,
        "num_heads": 16,
        "depth": 16,
        "depth_single_blocks": 32,
        "axes_dim": [64],
        "theta": 10000,
        "qkv_bias": True,
        "guidance_embed": False,
    },
    vae={
        "num_latents": 3072,
        "embed_dim": 64,
        "num_freqs": 8,
        "include_pi": False,
        "heads": 16,
        "width": 1024,
        "num_decoder_layers": 16,
        "qkv_bias": False,
        "qk_norm": True,
        "scale_factor": 0.9990943042622529,
    },
    image_encoder={
        "hidden_size": 1536,
        "num_hidden_layers": 40,
        "num_attention_heads": 24,
        "mlp_ratio": 4,
        "use_swiglu_ffn": True,
        "patch_size": 14,
        "layer_norm_eps": 1e-6,
        "layerscale_value": 1.0,
        "qkv_bias": True,
    },
    encoder_image_size=518,
    processor_size=512,
)


def build_text_to_image(folder: Path, device: torch.device) -> None:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    # No tokenizer can be downloaded: the tiny byte-level one pads every prompt to the same 77
    # tokens.
    tokenizer = byte_level_clip_tokenizer()
    torch.manual_seed(SEED)
    with torch.device(device):  # random initialisation of a billion weights is much faster on a GPU
        unet = UNet2DConditionModel(**SD_TURBO_UNET)
        vae = AutoencoderKL(**SD_TURBO_VAE)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                **SD_TURBO_TEXT_ENCODER,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    _save(stable_diffusion_pipeline(unet, vae, text_encoder, tokenizer, scheduler), folder)


def build_shap_e(folder: Path, device: torch.device) -> None:
    from diffusers import PriorTransformer
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(SEED)
    with torch.device(device):
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**SHAP_E_IMAGE_ENCODER))
        prior = PriorTransformer(**SHAP_E_PRIOR)
        renderer = ShapERenderer()  # its defaults are the published renderer's
    # 224 px and OpenAI's normalisation: CLIP ViT-L/14's image processor.
    pipe = shap_e_img2img_pipeline(prior, image_encoder, CLIPImageProcessor(), renderer)
    _save(pipe, folder)


def build_hunyuan3d(folder: Path, device: torch.device) -> None:
    from generation.pipelines.image_to_3d.hunyuan3d import DEFAULT_SUBFOLDER

    with torch.device(device):
        save_hunyuan3d_checkpoint(folder / DEFAULT_SUBFOLDER, HUNYUAN3D_2_CONFIG)


def _save(pipe, folder: Path) -> None:
    # Half precision halves the files; the pipelines cast to the dtype they run in when loading.
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.half()
    pipe.save_pretrained(folder)


# Each builder saves into a new folder of the given name; the text-to-image folder is named after
# sd-turbo so that the pipeline picks sd-turbo's sampling (4 steps, no guidance, 512 px).
BUILDERS = {
    "text-to-image": ("sd-turbo", build_text_to_image),
    "shap-e": ("shap-e-img2img", build_shap_e),
    "hunyuan3d": ("hunyuan3d", build_hunyuan3d),
}
