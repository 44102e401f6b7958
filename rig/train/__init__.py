"""Training: ``rig train lora`` (LoRA fine-tuning of the diffusion engines)."""
