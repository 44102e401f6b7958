"""rig: generative audio loops for a live set in Ableton Live."""

__version__ = "0.1.0"
