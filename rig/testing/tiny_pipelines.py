"""Tiny random diffusers pipelines (Stable Audio Open and Stable Audio 3), built offline from
configs through the real classes (no download): for the tests and ``rig bench diffusion``, like
audiocraft's 'debug' models. Their audio is noise; their shapes, calls and files are real.

Stable Audio Open: a 1-layer DiT, a small Oobleck VAE at 8 kHz (hop 256), a 1-layer T5 encoder and
a T5 tokenizer made from a word list.
"""

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


def tiny_sa3_pipeline(seed: int = 0) -> Any:
    """A tiny random Stable Audio 3 pipeline: SAME VAE at 8 kHz (hop 256), a 1-layer DiT, a
    1-layer T5Gemma encoder and a character-level Gemma tokenizer."""
    from diffusers import (
        AutoencoderSAME,
        FlowMatchEulerDiscreteScheduler,
        StableAudio3DiTModel,
        StableAudio3DurationEmbedder,
        StableAudio3Pipeline,
    )
    from transformers import GemmaTokenizer, T5GemmaConfig, T5GemmaEncoderModel

    torch.manual_seed(seed)
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for piece in [*"▁abcdefghijklmnopqrstuvwxyzTKBG0123456789,:.", *WORDS.split()]:
        vocab.setdefault(piece, len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    layer = {
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 4,
        "vocab_size": len(vocab),
    }
    encoder = T5GemmaEncoderModel(
        T5GemmaConfig(encoder=layer, decoder=layer, vocab_size=len(vocab), is_encoder_decoder=False)
    )
    vae = AutoencoderSAME(
        audio_channels=2,
        patch_size=64,
        encoder_channels=8,
        encoder_c_mults=[1],
        encoder_strides=[4],
        encoder_transformer_depths=[1],
        latent_dim=4,
        use_differential_attention=False,
        dim_heads=4,
        ff_mult=1,
        sampling_rate=8000,
    )
    transformer = StableAudio3DiTModel(
        io_channels=4,
        embed_dim=16,
        depth=1,
        num_heads=2,
        cond_token_dim=8,
        global_cond_dim=8,
        local_add_cond_dim=5,
        timestep_features_dim=8,
        ff_mult=1.0,
        num_memory_tokens=2,
        use_differential_attention=False,
    )
    return StableAudio3Pipeline(
        vae=vae,
        text_encoder=encoder,
        tokenizer=tokenizer,
        duration_embedder=StableAudio3DurationEmbedder(output_dim=8, fourier_dim=8),
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def write_tiny(kind: str, folder: Path, seed: int = 0) -> Path:
    """Save the tiny pipeline of ``kind`` ("sao" or "sa3") as a diffusers folder."""
    builders = {"sao": tiny_sao_pipeline, "sa3": tiny_sa3_pipeline}
    builders[kind](seed).save_pretrained(str(folder))
    return folder
