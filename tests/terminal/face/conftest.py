"""Fixtures of the face tests: one dlib pipeline per session (loading the models takes about a second)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terminal.face.pipeline import FacePipeline


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    return FacePipeline()


def write_roster(path: Path, children: list[tuple[str, bool]], version: int = 1) -> Path:
    """A roster file with the given (child id, consent_face) pairs and no badges."""
    doc: dict[str, Any] = {
        "version": version,
        "children": [
            {"id": cid, "name": cid.title(), "group": "Sunflowers", "consent_face": consent}
            for cid, consent in children
        ],
        "badges": [],
    }
    path.write_text(json.dumps(doc))
    return path
