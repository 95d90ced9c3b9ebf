"""1:1 and 1:N matching: the margin rule refuses to guess between two close people."""

from __future__ import annotations

import numpy as np

from terminal.face.match import Gallery


def unit(i: int, scale: float = 1.0) -> np.ndarray:
    v = np.zeros(128, dtype=np.float32)
    v[i] = scale
    return v


def test_identify_threshold_and_margin() -> None:
    gallery = Gallery(["ann", "ann", "bob"], [unit(0), unit(1), unit(2)])
    probe = unit(0) * 0.9  # 0.1 from ann, ~1.35 from bob
    assert gallery.identify(probe).identity == "ann"
    assert gallery.identify(unit(5)).identity is None  # a stranger
    between = (unit(0) + unit(2)) * 0.5  # equally close to ann and bob
    match = gallery.identify(between, threshold=1.0, margin=0.05)
    assert match.identity is None and match.reason == "ambiguous"
    assert Gallery([], []).identify(probe).reason == "empty_gallery"


def test_verify_is_one_to_one() -> None:
    gallery = Gallery(["ann", "bob"], [unit(0), unit(2)])
    assert gallery.verify("ann", unit(0) * 0.95).identity == "ann"
    assert gallery.verify("bob", unit(0)).reason == "no_match"  # ann's face on bob's badge
    assert gallery.verify("cid", unit(0)).reason == "no_templates"
    assert gallery.has("ann") and not gallery.has("cid")
