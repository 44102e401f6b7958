"""Training the models rig plays: datasets (``rig data``), StyleGAN2 loop models, vocoders,
directions and LoRA adapters (``rig train``), release folders (``rig export``), metrics and
listening pages (``rig eval``). Nothing here runs on stage."""
