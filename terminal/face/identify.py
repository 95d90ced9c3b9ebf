"""``kgate face identify``: a gallery folder (one subfolder of photos per person) against probe images."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from terminal.face.errors import BadImage
from terminal.face.images import load_rgb
from terminal.face.match import MARGIN, THRESHOLD_1N, Gallery
from terminal.face.pipeline import IDENTIFY_QUALITY, FacePipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Identified:
    """One probe's answer; ``identity`` is ``None`` for no face, no match or two close candidates."""

    image: str
    identity: str | None
    distance: float | None
    ms: float
    reason: str | None = None

    def record(self) -> dict[str, object]:
        distance = None if self.distance is None else round(self.distance, 4)
        return {"image": self.image, "identity": self.identity, "distance": distance, "ms": round(self.ms, 1)}


def build_gallery(pipeline: FacePipeline, folder: Path) -> tuple[Gallery, list[str]]:
    """One descriptor per usable photo in each subfolder of ``folder``; returns it and problems found."""
    if not folder.is_dir():
        raise BadImage(f"gallery {folder} is not a folder")
    labels: list[str] = []
    vectors: list[npt.NDArray[np.float32]] = []
    problems: list[str] = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            if photo.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                analysis = pipeline.analyse(load_rgb(photo), IDENTIFY_QUALITY)
            except BadImage as exc:
                problems.append(str(exc))
                continue
            face = analysis.best
            if face is None or face.descriptor is None:
                problems.append(f"{photo}: no usable face; not in the gallery")
                continue
            labels.append(person.name)
            vectors.append(face.descriptor)
    return Gallery(labels, vectors), problems


def identify(
    pipeline: FacePipeline,
    gallery: Gallery,
    images: Iterable[Path],
    threshold: float = THRESHOLD_1N,
    margin: float = MARGIN,
) -> Iterator[Identified | BadImage]:
    """One answer per image, in order; a bad image yields its :class:`BadImage` and the rest go on."""
    for path in images:
        try:
            rgb = load_rgb(path)
        except BadImage as exc:
            yield exc
            continue
        start = time.perf_counter()
        face = pipeline.analyse(rgb, IDENTIFY_QUALITY).best
        if face is None or face.descriptor is None:
            reason = "no_face" if face is None else face.problem
            yield Identified(str(path), None, None, (time.perf_counter() - start) * 1000.0, reason)
            continue
        match = gallery.identify(face.descriptor, threshold, margin)
        ms = (time.perf_counter() - start) * 1000.0
        yield Identified(str(path), match.identity, match.distance, ms, match.reason)
