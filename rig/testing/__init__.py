"""Support for the tests and benchmarks, kept apart from the production code: a stand-in device
on real UDP (:mod:`~rig.testing.standin`), tiny random diffusers pipelines
(:mod:`~rig.testing.tiny_pipelines`) and synthetic signals (:mod:`~rig.testing.signals`). The
engines and the show never import it."""
