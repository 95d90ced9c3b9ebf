"""Faces at the gate: dlib detection and descriptors, encrypted templates, consent-gated matching.

Nothing here imports dlib at module level; :class:`~terminal.face.pipeline.FacePipeline` loads it.
See ``docs/faces.md`` and ``docs/privacy.md``.
"""
