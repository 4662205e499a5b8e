"""The tiny text-to-image model: Stable Diffusion's parts at toy sizes, with a byte-level
tokenizer."""

from pathlib import Path

import torch

from generation.tiny_models import SEED

# Words whose byte-pair merges the tiny tokenizer knows; any other text still encodes byte by byte.
TOKENIZER_WORDS = [
    "a",
    "single",
    "object",
    "centered",
    "full",
    "view",
    "plain",
    "white",
    "background",
    "studio",
    "lighting",
    "red",
    "blue",
    "green",
    "chair",
    "cup",
    "toy",
    "car",
]


def build(folder: Path) -> None:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = byte_level_clip_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    _symmetrise_kernels(vae.decoder)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
        # The UNet predicts the clean latents: untrained, that is a smooth random field, which
        # decodes
        # to blobs. Predicting the noise instead would leave the sampler's own white noise behind.
        prediction_type="sample",
    )
    stable_diffusion_pipeline(unet, vae, text_encoder, tokenizer, scheduler).save_pretrained(folder)


def stable_diffusion_pipeline(unet, vae, text_encoder, tokenizer, scheduler):
    """A Stable Diffusion pipeline of these parts, without the safety checker (no weights for
    it)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _symmetrise_kernels(decoder) -> None:
    """Average every 3x3 kernel over the square's eight symmetries.

    An untrained decoder answers differently at each of the four edges of the picture, where its
    convolutions see zero padding. With symmetric kernels all four margins come out alike: a plain
    background around the blobs, as a real model paints one around its object, so cut-out works.
    """
    with torch.no_grad():
        for conv in decoder.modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (3, 3):
                flips = [
                    conv.weight,
                    conv.weight.flip(-1),
                    conv.weight.flip(-2),
                    conv.weight.flip(-1, -2),
                ]
                conv.weight.copy_(sum(flips + [kernel.transpose(-1, -2) for kernel in flips]) / 8)


def byte_level_clip_tokenizer():
    """A CLIP tokenizer over all 256 bytes plus merges that spell out ``TOKENIZER_WORDS``."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    end_of_word = "</w>"
    byte_symbols = sorted(ByteLevel.alphabet())
    tokens = (
        ["<|startoftext|>", "<|endoftext|>"]
        + byte_symbols
        + [s + end_of_word for s in byte_symbols]
    )
    merges = []
    for word in TOKENIZER_WORDS:
        # Merge left to right: "red" -> ("r", "e"), ("re", "d</w>").
        symbols = list(word[:-1]) + [word[-1] + end_of_word]
        prefix = symbols[0]
        for symbol in symbols[1:]:
            if (prefix, symbol) not in merges:
                merges.append((prefix, symbol))
                tokens.append(prefix + symbol)
            prefix += symbol
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
