"""The performer web UI (Gradio) and the projector stage view. Imports gradio: keep it out of the
core's imports (``rig.ui`` is loaded by ``rig perform`` only)."""
