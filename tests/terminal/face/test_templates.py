"""The encrypted template store: a copied file reveals nothing; forget and retention really delete."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from terminal.face.errors import TemplateStoreError
from terminal.face.templates import open_templates, prune_for_roster
from terminal.roster import Child

RNG = np.random.default_rng(9)


def vectors(n: int) -> list[np.ndarray]:
    return [RNG.normal(0, 0.1, 128).astype(np.float32) for _ in range(n)]


def leaks(raw: bytes, vector: np.ndarray) -> bool:
    """Whether any 4 consecutive float values of ``vector`` appear in ``raw`` as float32 or float64."""
    for dtype in ("<f4", ">f4", "<f8"):
        packed = vector.astype(dtype).tobytes()
        width = np.dtype(dtype).itemsize * 4
        if any(packed[i : i + width] in raw for i in range(0, len(packed) - width + 1, width)):
            return True
    return False


def test_roundtrip_and_key_file_rules(tmp_path: Path) -> None:
    a, b = vectors(2), vectors(1)
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        assert store.add("c-001", a) == 2
        assert store.add("c-002", b) == 1
        gallery = store.gallery()
        assert sorted(gallery.labels) == ["c-001", "c-001", "c-002"]
        assert np.allclose(gallery.matrix[gallery.labels.index("c-002")], b[0])
        assert store.gallery(["c-002"]).labels == ["c-002"]
    assert stat.S_IMODE((tmp_path / "face.key").stat().st_mode) == 0o600
    os.chmod(tmp_path / "face.key", 0o644)
    with pytest.raises(TemplateStoreError, match="must be 0600"):
        open_templates(tmp_path / "faces.db", tmp_path / "face.key")


def test_copied_database_without_key_reveals_nothing(tmp_path: Path) -> None:
    vs = vectors(3)
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        store.add("c-secret-child", vs)
    copy = tmp_path / "elsewhere" / "faces.db"
    copy.parent.mkdir()
    shutil.copy(tmp_path / "faces.db", copy)
    raw = copy.read_bytes()
    assert b"c-secret-child" not in raw
    assert not any(leaks(raw, v) for v in vs)
    with pytest.raises(TemplateStoreError, match=r"does not exist; the templates .* cannot be read"):
        open_templates(copy, copy.parent / "face.key")
    # A fresh key (an attacker's, or a reinstall) is told apart, not silently used.
    with open_templates(tmp_path / "other.db", copy.parent / "face.key"):
        pass
    with pytest.raises(TemplateStoreError, match="is not the key of"):
        open_templates(copy, copy.parent / "face.key")


def test_tampered_row_is_refused(tmp_path: Path) -> None:
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        store.add("c-001", vectors(1))
    conn = sqlite3.connect(tmp_path / "faces.db")
    (ct,) = conn.execute("SELECT ct FROM templates").fetchone()
    conn.execute("UPDATE templates SET ct = ?", (ct[:20] + bytes([ct[20] ^ 1]) + ct[21:],))
    conn.commit()
    conn.close()
    with (
        open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store,
        pytest.raises(TemplateStoreError, match="tampered"),
    ):
        store.gallery()


def test_forget_removes_rows_and_ciphertext(tmp_path: Path) -> None:
    db = tmp_path / "faces.db"
    with open_templates(db, tmp_path / "face.key") as store:
        store.add("c-001", vectors(2))
        store.add("c-002", vectors(1))
        version_before = store.version()
        cts = [r[0] for r in sqlite3.connect(db).execute("SELECT ct FROM templates")]
        assert store.forget("c-001") == 2
        assert store.count("c-001") == 0 and store.count() == 1
        assert store.version() != version_before
        assert store.forget("c-001") == 0
    raw = db.read_bytes()
    kept = {r[0] for r in sqlite3.connect(db).execute("SELECT ct FROM templates")}
    for ct in cts:
        assert (ct in raw) == (ct in kept)  # forgotten ciphertext is gone from the file, not just unlinked


def test_retention_on_roster_install(tmp_path: Path) -> None:
    roster_db = tmp_path / "roster.db"
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        for cid in ("stays", "withdrawn", "left"):
            store.add(cid, vectors(1))
    children = [Child("stays", "S", "G", True), Child("withdrawn", "W", "G", False)]
    assert prune_for_roster(roster_db, children) == 2
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as store:
        assert store.gallery().labels == ["stays"]
    assert prune_for_roster(tmp_path / "none" / "roster.db", children) == 0  # no template database
