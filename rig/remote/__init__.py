"""A GPU host that is not the Live laptop: the host's take files and relay (``host``), the
companion on the laptop (``companion``, ``connection``, ``download``, ``proxy``, ``run``) and what
they say to each other (``wire``). Needs the ``ui`` extra, never torch or gradio on the laptop."""
