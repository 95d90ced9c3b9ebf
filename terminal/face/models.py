"""The dlib model files, found inside the installed ``face_recognition_models`` package.

The package's own ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so the files
are located with :mod:`importlib.resources` without importing it. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from terminal.face.errors import FaceModelsMissing

PACKAGE = "face_recognition_models"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def model_path(name: str) -> Path:
    """The path of model file ``name``; :class:`FaceModelsMissing` with the fix if it is absent."""
    spec = importlib.util.find_spec(PACKAGE)  # does not run the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(
            f"the {PACKAGE} package is not installed (pip install 'face_recognition_models>=0.3.0')"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / name
        if path.is_file():
            return path
    raise FaceModelsMissing(f"{PACKAGE} has no {name}; version 0.3.0 or later is needed")


def import_dlib() -> object:
    """The ``dlib`` module, or :class:`FaceModelsMissing` saying how to install it."""
    try:
        import dlib  # noqa: PLC0415 - heavy, and only the face modes need it
    except ImportError:
        raise FaceModelsMissing("dlib is not installed (pip install dlib-bin)") from None
    return dlib
