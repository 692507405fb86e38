"""Tiny pipelines with random weights, one per family, for tests and the demo.

They have the architecture of the real ones (SD 1.5: U-Net + CLIP; PixArt-α: DiT with
learned sigma + T5) at a few hundred thousand parameters and 64×64 pixels, so every code
path a real checkpoint takes (saving, ``from_pretrained``, tokenizing, the VAE, the
scheduler) runs in seconds on a CPU. The tokenizers are character-level, built here
because no model hub is reachable.
"""

import string
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    PixArtAlphaPipeline,
    PixArtTransformer2DModel,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from training.pipelines import FAMILIES

RESOLUTION = 64
LATENT_SIZE = 32  # the tiny VAE halves each side once
# The architectures at toy width; bench/train_step.py times them too.
TINY_UNET = dict(
    sample_size=LATENT_SIZE,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=8,
)
TINY_VAE = dict(
    block_out_channels=(32, 64),
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    latent_channels=4,
    sample_size=RESOLUTION,
)


def _scheduler() -> DDIMScheduler:
    # SD 1.5's noise schedule; DDIM is what generation uses by default (paper §4.2).
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(**TINY_VAE)


def _clip_tokenizer() -> CLIPTokenizer:
    specials = ["<|startoftext|>", "<|endoftext|>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + alphabet + [c + "</w>" for c in alphabet])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _t5_tokenizer() -> T5Tokenizer:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_letters + string.digits + string.punctuation]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=120)


def tiny_unet_pipeline() -> StableDiffusionPipeline:
    tokenizer = _clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(**TINY_UNET)
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_dit_pipeline() -> PixArtAlphaPipeline:
    tokenizer = _t5_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    transformer = PixArtTransformer2DModel(
        sample_size=LATENT_SIZE,
        num_layers=2,
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,  # learned sigma, as PixArt-α
        cross_attention_dim=16,
        caption_channels=32,
    )
    return PixArtAlphaPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_vae(),
        transformer=transformer,
        scheduler=_scheduler(),
    )


def build_tiny_pipeline(family: str, folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny ``family`` pipeline with weights drawn from ``seed`` and save it."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    torch.manual_seed(seed)
    pipeline = tiny_unet_pipeline() if family == "unet" else tiny_dit_pipeline()
    folder = Path(folder)
    pipeline.save_pretrained(folder)
    return folder
