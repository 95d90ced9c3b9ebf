"""Signed roster delivery: a real register on loopback serves TUF metadata, the device updates with ngclient.

Every attack must be refused with a message naming what failed, and leave the installed roster unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Targets

from ledger.note import Ed25519Signer
from register.app import create_app
from register.service import Register
from register.store import open_store
from register.tuf_repo import TARGETS_KEY, RosterRepoError, RosterRepository, load_signer
from sync_agent.roster_update import RosterRefused, RosterUnavailable, install_root, update_roster
from terminal.badge import new_serial
from terminal.roster import open_roster
from tests.conftest import free_port

K = "k-7"
SERIAL = new_serial()


def doc(version: int, name: str = "Аружан", *, consent: bool = False) -> bytes:
    return json.dumps(
        {
            "version": version,
            "kindergarten": K,
            "children": [{"id": "c-1", "name": name, "group": "Күн", "consent_face": consent}],
            "guardians": [{"id": "g-1", "name": "Дана", "children": ["c-1"]}],
            "badges": [{"serial": SERIAL, "child": "c-1"}],
        },
        ensure_ascii=False,
    ).encode()


@dataclass
class Setup:
    url: str
    repo: RosterRepository
    device: Ed25519Signer
    state: Path
    roster_db: Path

    def update(self) -> Any:
        return update_roster(self.state, self.url, K, self.device, self.roster_db, timeout=(2.0, 5.0))

    def installed(self) -> tuple[int | None, str | None]:
        with open_roster(self.roster_db) as roster:
            child = roster.child("c-1")
            return roster.version, child.name if child else None

    def meta(self, name: str) -> Path:
        return self.repo.metadata / name


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    store = open_store(str(tmp_path / "register.db"))
    device = Ed25519Signer.generate("reg.test/kgate/gate1")
    store.add_device(device.vkey, kindergarten=K, gate="north", now_ms=0)
    app = create_app(Register(store, _cosigner()))
    app.state.rosters_dir = tmp_path / "rosters"
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    repo = RosterRepository(tmp_path / "rosters", tmp_path / "keys", K)
    repo.publish(doc(1), 1)
    state = tmp_path / "device"
    install_root(state, (repo.metadata / "root.json").read_bytes())
    yield Setup(f"http://127.0.0.1:{port}", repo, device, state, tmp_path / "roster.db")
    server.should_exit = True
    thread.join(10)
    store.close()


def _cosigner() -> Any:
    from ledger.note import CosignatureSigner

    return CosignatureSigner.generate("reg.test")


def test_happy_path_installs_and_same_roster_twice_is_a_no_op(setup: Setup) -> None:
    first = setup.update()
    assert first.installed and first.version == 1
    assert setup.installed() == (1, "Аружан")
    again = setup.update()
    assert not again.installed and again.version == 1
    setup.repo.publish(doc(2, "Аружан Б."), 2)
    assert setup.update().installed
    assert setup.installed() == (2, "Аружан Б.")
    with open_roster(setup.roster_db) as roster:
        expires = roster.expires
        assert expires is not None and roster.lookup_guardian(SERIAL) is None


def test_update_runs_face_template_retention_without_loading_dlib(setup: Setup, tmp_path: Path) -> None:
    import numpy as np

    from terminal.face.templates import open_templates

    setup.repo.publish(doc(2, consent=True), 2)
    assert setup.update().installed
    faces, key = tmp_path / "faces.db", tmp_path / "device-face.key"  # the key beside the device key
    with open_templates(faces, key) as store:
        store.add("c-1", [np.full(128, 0.01, dtype=np.float32)])
        store.add("c-gone", [np.full(128, 0.02, dtype=np.float32)])  # a child no longer in the roster

    def update() -> Any:
        return update_roster(
            setup.state, setup.url, K, setup.device, setup.roster_db, timeout=(2.0, 5.0), face_key=key
        )

    assert not update().installed  # the same roster again: retention still runs
    with open_templates(faces, key) as store:
        assert (store.count("c-1"), store.count("c-gone")) == (1, 0)
    setup.repo.publish(doc(3, consent=False), 3)  # the parent withdrew consent
    assert update().installed
    with open_templates(faces, key) as store:
        assert store.count() == 0
    # The retention path needs no face models: importing it does not import dlib.
    probe = "import sys, terminal.roster, terminal.face.templates; print('dlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_refresh_moves_the_expiry_forward(setup: Setup) -> None:
    first = setup.update().expires
    time.sleep(1.1)
    setup.repo.refresh()
    assert setup.update().expires > first


def _snapshot_files(repo: RosterRepository) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in repo.metadata.iterdir()}


def test_rollback_to_an_older_repository_refused(setup: Setup) -> None:
    old = _snapshot_files(setup.repo)
    setup.repo.publish(doc(2), 2)
    setup.update()
    for p in setup.repo.metadata.iterdir():  # an attacker (or a restored backup) serves the old state
        p.unlink()
    for name, data in old.items():
        (setup.repo.metadata / name).write_bytes(data)
    with pytest.raises(RosterRefused, match="BadVersionNumberError"):
        setup.update()
    assert setup.installed() == (2, "Аружан")


def test_frozen_old_unexpired_timestamp_refused(setup: Setup) -> None:
    setup.update()
    old_ts = setup.meta("timestamp.json").read_bytes()
    setup.repo.refresh()
    setup.update()  # the device has seen timestamp v2
    setup.repo.publish(doc(2, "new"), 2)
    setup.meta("timestamp.json").write_bytes(old_ts)  # replay v1: signed, not expired
    with pytest.raises(RosterRefused, match=r"BadVersionNumberError.*timestamp"):
        setup.update()
    assert setup.installed() == (1, "Аружан")


def test_frozen_past_expiry_refused(setup: Setup, tmp_path: Path) -> None:
    setup.update()
    stale = RosterRepository(
        setup.repo.dir.parent, tmp_path / "keys", K, clock=lambda: time.time() - 3 * 86400
    )
    stale.refresh()  # a timestamp that expired two days ago (a mirror frozen in time)
    with pytest.raises(RosterRefused, match="ExpiredMetadataError"):
        setup.update()
    assert setup.installed() == (1, "Аружан")


def test_mix_and_match_refused(setup: Setup) -> None:
    setup.update()
    setup.repo.publish(doc(2, "v2"), 2)
    setup.repo.publish(doc(3, "v3"), 3)
    # the newest snapshot (targets v3) served with the older, genuinely signed targets v2
    setup.meta("3.targets.json").write_bytes(setup.meta("2.targets.json").read_bytes())
    with pytest.raises(RosterRefused, match="BadVersionNumberError"):
        setup.update()
    assert setup.installed() == (1, "Аружан")


def _resign_timestamp(setup: Setup, signer: CryptoSigner) -> None:
    ts = Metadata.from_file(str(setup.meta("timestamp.json")))
    ts.signed.version += 1
    ts.sign(signer)
    setup.meta("timestamp.json").write_bytes(ts.to_bytes())


def test_wrong_key_refused(setup: Setup) -> None:
    setup.update()
    setup.repo.publish(doc(2, "forged"), 2)
    _resign_timestamp(setup, CryptoSigner(Ed25519PrivateKey.generate()))
    with pytest.raises(RosterRefused, match="UnsignedMetadataError"):
        setup.update()
    assert setup.installed() == (1, "Аружан")


def test_revoked_online_key_refused_after_rotation(setup: Setup, tmp_path: Path) -> None:
    setup.update()
    old = load_signer(tmp_path / "keys", "online.key")
    setup.repo.rotate_online_key()
    setup.repo.publish(doc(2, "rotated"), 2)
    assert setup.update().version == 2  # the new root arrives through the chain, signed by the root key
    setup.repo.publish(doc(3, "forged"), 3)
    _resign_timestamp(setup, old)  # the leaked, revoked online key
    with pytest.raises(RosterRefused, match="UnsignedMetadataError"):
        setup.update()
    assert setup.installed() == (2, "rotated")


def test_target_hash_mismatch_refused(setup: Setup) -> None:
    setup.update()
    setup.repo.publish(doc(2, "real"), 2)
    newest = max(setup.repo.targets.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(doc(2, "evil"))
    with pytest.raises(RosterRefused, match="LengthOrHashMismatchError"):
        setup.update()
    assert setup.installed() == (1, "Аружан")


def test_other_kindergartens_device_gets_403(setup: Setup, tmp_path: Path) -> None:
    stranger = Ed25519Signer.generate("reg.test/kgate/gate9")
    other_state = tmp_path / "other"
    shutil.copytree(setup.state, other_state)
    with pytest.raises(RosterUnavailable, match="HTTP 403"):
        update_roster(other_state, setup.url, K, stranger, tmp_path / "o.db", timeout=(2.0, 5.0))


def _targets_naming(setup: Setup, roster_version: object, keys: Path) -> None:
    """Sign (with the real targets key) new targets whose roster entry names ``roster_version`` for the
    published document: what a publisher that skipped the check, or a key holder replaying an older
    roster under a newer number, would serve. Snapshot and timestamp are re-signed as the register does."""
    repo = setup.repo
    current = repo._snapshot().signed.meta["targets.json"].version
    targets: Metadata[Targets] = Metadata.from_file(str(setup.meta(f"{current}.targets.json")))
    entry = targets.signed.targets["roster.json"]
    if roster_version is None:
        entry.unrecognized_fields.pop("roster_version")
    else:
        entry.unrecognized_fields["roster_version"] = roster_version
    targets.signed.version += 1
    targets.sign(load_signer(keys, TARGETS_KEY))
    setup.meta(f"{targets.signed.version}.targets.json").write_bytes(targets.to_bytes())
    repo._resign_online(targets_version=targets.signed.version)


@pytest.mark.parametrize("named", [3, 1, None, True, "2"])
def test_signed_targets_must_name_the_documents_roster_version(
    setup: Setup, tmp_path: Path, named: object
) -> None:
    setup.update()
    setup.repo.publish(doc(2, "v2"), 2)
    _targets_naming(setup, named, tmp_path / "keys")
    with pytest.raises(RosterRefused, match=r"^roster update refused: the signed targets name roster version "
                       rf"{re.escape(repr(named))}, the document 2$"):  # fmt: skip
        setup.update()
    assert setup.installed() == (1, "Аружан")


def test_the_same_roster_version_cannot_be_published_twice(setup: Setup) -> None:
    """A gate keeps the version it has, so a changed roster under the same number would reach no gate."""
    setup.update()
    with pytest.raises(RosterRepoError, match=r"^roster version 1 is already published for 'k-7'; the gates "
                       r"keep the version they have, so a changed roster needs version 2$"):  # fmt: skip
        setup.repo.publish(doc(1, "changed"), 1)
    with pytest.raises(RosterRepoError, match=r"^roster version 1 is already published"):
        setup.repo.publish(doc(1), 1)  # the identical document: nothing to publish either
    setup.repo.publish(doc(3, "v3"), 3)
    below = r"^roster version 2 is below the published 3: versions never go back \(publish it as version 4\)$"
    with pytest.raises(RosterRepoError, match=below):
        setup.repo.publish(doc(2, "v2"), 2)
    assert setup.update().version == 3 and setup.installed() == (3, "v3")


def test_cli_publish_of_a_published_version_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kgate.cli import main

    (tmp_path / "roster.json").write_bytes(doc(1))
    argv = ["register", "tuf", "publish", "--kindergarten", K, "--state", str(tmp_path / "s"),
            str(tmp_path / "roster.json")]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    (tmp_path / "roster.json").write_bytes(doc(1, "changed"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "roster version 1 is already published" in err
