"""``kgate provision``'s steps over the local transport (a directory root): what ``kgate demo`` uses.

The same :mod:`provisioning.device` steps and :func:`provisioning.provision.provision` as against the
booted target (test_provision.py), against a real register on loopback; no root, no nspawn needed. What
a directory root cannot have (apt, a service user, a running service manager) is reported ``skipped``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno

from ledger.store import open_ledger
from provisioning import bundle
from provisioning.decommission import decommission
from provisioning.errors import StepError
from provisioning.local import LocalRoot
from provisioning.provision import StepResult, provision, summary
from register.enrol import Enrolment
from register.local import LocalRegister, serve_locally
from sync_agent.config import load_config
from terminal.config import load_config as load_terminal_config

pytestmark = pytest.mark.skipif(
    shutil.which("systemctl") is None, reason="systemctl (package systemd) enables the units in the root"
)

#: The report lines of a provisioning run, in order: the same on a device and in a local root.
LINES = [
    "os",
    "packages",
    "user",
    "venv",
    "enrol",
    "config",
    "units",
    "camera",
    "ledger",
    "register",
    "roster",
]
UNITS = ("kgate-terminal.service", "kgate-sync.service")


@pytest.fixture(scope="module")
def register_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("register") / "register.db"


@pytest.fixture(scope="module")
def register(register_db: Path) -> Iterator[LocalRegister]:
    with serve_locally(str(register_db), register_db.parent, "reg.test") as reg:
        yield reg


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "card.png"
    segno.make_qr("a card for the replay camera").save(str(path), scale=4)
    return path


def token(register: LocalRegister, gate: str) -> str:
    return Enrolment(register.store).create_token("K-7", gate, expires_s=600)


def run(
    root: Path, register: LocalRegister, card: Path, tok: str | None, *, dry_run: bool = False
) -> list[StepResult]:
    camera = f"replay:{card}"
    return provision(LocalRoot(root), register=register.url, token=tok, camera=camera, dry_run=dry_run)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_provisions_a_local_root_and_a_second_run_changes_nothing(
    register: LocalRegister, card: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gate"
    first = run(root, register, card, token(register, "gate-1"))
    assert [r.step for r in first] == LINES
    assert {r.step: r.status for r in first} == {
        "os": "skipped", "packages": "skipped", "user": "changed", "venv": "skipped", "enrol": "changed",
        "config": "changed", "units": "changed", "camera": "skipped", "ledger": "skipped",
        "register": "unchanged", "roster": "unchanged",
    }  # fmt: skip
    state, etc = root / "var/lib/kgate", root / "etc/kgate"
    ident = json.loads((state / "enrolment.json").read_text(encoding="utf-8"))
    assert ident["origin"] == "reg.test/kgate/k-7-gate-1"
    assert (state / "device.key").stat().st_mode & 0o777 == 0o600

    # The agent's configuration, read as `kgate sync run` reads it, points into the root.
    cfg = load_config(etc / "sync.toml", {})
    assert (cfg.ledger, cfg.key, cfg.state) == (state / "ledger.db", state / "device.key", state / "sync")
    assert cfg.terminal_status == state / "terminal-status.json"  # where the terminal writes it
    assert cfg.register == register.url and cfg.cosigner().name == "reg.test"
    terminal = load_terminal_config(etc / "terminal.toml")
    assert terminal.ledger.origin == ident["origin"]
    assert terminal.camera.backend == "replay" and terminal.camera.paths == (etc / "camera",)
    assert (etc / "camera" / card.name).read_bytes() == card.read_bytes()
    for unit in UNITS:  # enabled as systemd would find them when the root boots
        enabled = subprocess.run(["systemctl", f"--root={root}", "is-enabled", unit], capture_output=True,
                                 text=True, timeout=60, check=False)  # fmt: skip
        assert enabled.stdout.strip() == "enabled"

    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = run(root, register, card, None)
    assert summary(second) == "0 changed, 6 unchanged, 5 skipped"
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_dry_run_writes_nothing(register: LocalRegister, card: Path, tmp_path: Path) -> None:
    root = tmp_path / "gate"
    results = run(root, register, card, token(register, "gate-2"), dry_run=True)
    assert {r.step for r in results if r.status == "would change"} == {"user", "enrol", "config", "units"}
    assert files(root) == set()


def test_a_wrong_token_is_refused_and_the_next_run_finishes(
    register: LocalRegister, card: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gate"
    with pytest.raises(StepError, match=r"^step enrol failed: enrolment refused, nothing stored: .*token"):
        run(root, register, card, "kgate-enrol-" + "A" * 43)
    assert files(root) == {"var", "var/lib", "var/lib/kgate", "etc", "etc/kgate"}  # no key, no config
    results = run(root, register, card, token(register, "gate-3"))
    assert {r.step: r.status for r in results}["enrol"] == "changed"


def test_decommissions_a_local_root(
    register: LocalRegister, register_db: Path, card: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gate"
    run(root, register, card, token(register, "gate-4"))
    state = root / "var/lib/kgate"
    origin = json.loads((state / "enrolment.json").read_text(encoding="utf-8"))["origin"]
    with open_ledger(state / "ledger.db", origin=origin) as ledger:
        ledger.append("boot", evidence={"software": "test"})
        ledger.append("in", child="KZ1", method="qr")

    first = decommission(LocalRoot(root), db=str(register_db), by="technician")
    status = {r.step: r.status for r in first}
    assert status["stop"] == "skipped" and status["final-sync"] == "changed"
    assert (status["keys"], status["units"], status["archive"], status["revoke"]) == ("changed",) * 4
    device = register.store.device_by_origin(origin)
    assert device is not None
    newest = register.store.newest_checkpoint(device.id)
    assert newest is not None and newest.size == 2  # the final sync pushed both entries
    assert list(state.iterdir()) == []
    (archived,) = (root / "var/lib/kgate-decommissioned").iterdir()
    assert (archived / "ledger.db").is_file() and not (archived / "device.key").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants").exists() or not any(
        (root / "etc/systemd/system/multi-user.target.wants").iterdir()
    )
    again = decommission(LocalRoot(root), db=str(register_db), by="technician")
    assert not [r for r in again if r.status == "changed"]


def test_without_systemctl_the_units_are_copied_with_a_warning(
    register: LocalRegister, card: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without systemd (a container) still runs the demo: the units are copied, not enabled."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("uname", "id", "mktemp", "rm", "chmod"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    root = tmp_path / "gate"
    results = {r.step: r for r in run(root, register, card, token(register, "gate-5"))}
    assert results["units"].status == "warning"
    assert "installed 2 unit files; not enabled: this machine has no systemctl" in results["units"].detail
    assert {p.name for p in (root / "etc/systemd/system").iterdir()} == set(UNITS)
    assert results["enrol"].status == "changed" and results["config"].status == "changed"
    again = {r.step: r for r in run(root, register, card, None)}
    assert again["units"].detail.startswith("installed 0 unit files")


def test_an_installed_wheel_carries_what_a_bundle_copies(tmp_path: Path) -> None:
    """kgate provision (and the demo) from a kgate installed from its wheel, not only from a checkout."""
    wheel = bundle.build_wheel(tmp_path)  # what the bundle's wheelhouse gets from a checkout
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    needed = {"provisioning/device.py", "provisioning/system-packages.sh"}
    needed |= {f"provisioning/systemd/{d}.d/kgate.conf" for d in ("sysusers", "tmpfiles")}
    needed |= {f"provisioning/systemd/{unit}" for unit in bundle.DEVICE_UNITS}
    assert needed <= names, sorted(needed - names)


def test_an_os_error_names_its_step(register: LocalRegister, card: Path, tmp_path: Path) -> None:
    """A file system that refuses (here: a file where the state directory belongs) fails one named step."""
    root = tmp_path / "gate"
    (root / "var/lib").mkdir(parents=True)
    (root / "var/lib/kgate").write_text("not a directory\n")
    with pytest.raises(StepError, match=r"^step user failed: File exists: .*/var/lib/kgate \(fix it"):
        run(root, register, card, token(register, "gate-6"))
    assert not (root / "etc/kgate/sync.toml").exists()
