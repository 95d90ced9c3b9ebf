"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def shared_path(*parts: str) -> Path:
    """A path inside ``../shared`` (or ``$KGATE_SHARED``); skips the test with a reason if absent."""
    base = Path(os.environ.get("KGATE_SHARED", ROOT.parent / "shared"))
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (the project's ../shared folder is absent)")
    return path


@pytest.fixture
def shared() -> type[object]:
    """Gives tests ``shared("data", "vectors", ...)`` as a callable."""
    return shared_path  # type: ignore[return-value]
