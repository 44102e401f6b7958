"""Max for Live device tooling: the .amxd container, and (with issue #6) build and lint."""
