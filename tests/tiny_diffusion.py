"""A tiny random Stable Audio Open pipeline, built offline from configs (no download): a 1-layer
DiT, a small Oobleck VAE at 8 kHz (hop 256), a 1-layer T5 encoder and a T5 tokenizer made from a
word list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

WORDS = (
    "▁a ▁drum ▁drums ▁pad ▁bass ▁loop ▁dusty ▁airy ▁dark ▁tempo ▁key ▁genre ▁instrument "
    "▁techno ▁ambient ▁minor ▁major ▁bars , : . 1 2 3 4 5 6 7 8 9 0 T e m p o K y B a r s"
)


def tiny_sao_pipeline(seed: int = 0) -> Any:
    """The pipeline object (on the CPU)."""
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    torch.manual_seed(seed)
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(word, -float(i)) for i, word in enumerate(WORDS.split())]
    tokenizer = T5Tokenizer(vocab=vocab, model_max_length=48)
    encoder = T5EncoderModel(
        T5Config(vocab_size=len(vocab), d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2)
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=8,
        downsampling_ratios=[4, 8, 8],
        decoder_channels=8,
        decoder_input_channels=4,
        audio_channels=2,
        channel_multiples=[1, 2, 2],
        sampling_rate=8000,
    )
    transformer = StableAudioDiTModel(
        sample_size=256,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        out_channels=4,
        cross_attention_dim=16,
        time_proj_dim=8,
        global_states_input_dim=16,
        cross_attention_input_dim=8,
    )
    projection = StableAudioProjectionModel(
        text_encoder_dim=8, conditioning_dim=8, min_value=0, max_value=512
    )
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    return StableAudioPipeline(
        vae=vae,
        text_encoder=encoder,
        projection_model=projection,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,
    )


def write_tiny_sao(folder: Path, seed: int = 0) -> Path:
    """Save :func:`tiny_sao_pipeline` as a diffusers folder (``save_pretrained``)."""
    tiny_sao_pipeline(seed).save_pretrained(str(folder))
    return folder
