"""``kgate provision``'s steps over the local transport (a directory root): what ``kgate demo`` uses.

The same :mod:`provisioning.device` steps and :func:`provisioning.provision.provision` as against the
booted target (test_provision.py), against a real register on loopback; no root, no nspawn needed. What
a directory root cannot have (apt, a service user, a running service manager) is reported ``skipped``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno
from PIL import Image

from hardware.feedback import FeedbackConfig
from kgate.cli import main
from kgate.errors import UsageError
from ledger.store import open_ledger
from provisioning import bundle
from provisioning.decommission import decommission
from provisioning.device import GATE_DEFAULTS, SCREEN_PNG
from provisioning.errors import StepError
from provisioning.local import LocalRoot
from provisioning.provision import StepResult, provision, shown, summary
from register.enrol import Enrolment
from register.local import LocalRegister, serve_locally
from sync_agent.config import load_config
from sync_agent.enrol import prove_key
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
    "screen",
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
        "config": "changed", "units": "changed", "camera": "skipped", "screen": "unchanged",
        "ledger": "skipped", "register": "unchanged", "roster": "unchanged",
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
    # Default options: a Raspberry Pi gate with the official 7" panel on the framebuffer and the pins
    # of hardware/README.md, in Kazakh, checking badges only, no pickup rule.
    assert terminal.display.backend == "framebuffer"
    assert terminal.screen.size == (800, 480) and terminal.screen.lang == "kk"
    assert terminal.feedback == FeedbackConfig(green_pin=17, red_pin=27, buzzer_pin=22, relay_pin=None,
                                               in_button_pin=5, out_button_pin=6)  # fmt: skip
    assert (terminal.gate.language, terminal.gate.mode, terminal.gate.pickup) == ("kk", "qr", "off")
    assert "owns this file" in (etc / "terminal.toml").read_text(encoding="utf-8").splitlines()[0]
    assert (etc / "terminal.toml.d").is_dir()
    screen = next(r for r in first if r.step == "screen")
    assert (
        screen.detail == f"idle screen 800x480 (kk) for the framebuffer display drawn to {state / SCREEN_PNG}"
    )
    with Image.open(state / SCREEN_PNG) as png:
        assert png.size == (800, 480) and png.format == "PNG"
    for unit in UNITS:  # enabled as systemd would find them when the root boots
        enabled = subprocess.run(["systemctl", f"--root={root}", "is-enabled", unit], capture_output=True,
                                 text=True, timeout=60, check=False)  # fmt: skip
        assert enabled.stdout.strip() == "enabled"

    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = run(root, register, card, None)
    assert summary(second) == "0 changed, 7 unchanged, 5 skipped"
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_local_display_setting_survives_a_second_provisioning_run(
    register: LocalRegister, card: Path, tmp_path: Path
) -> None:
    """Provisioning owns terminal.toml and rewrites it; the technician's drop-in is never touched and the
    terminal (and the self-test's picture) reads it merged over the provisioned file."""
    root = tmp_path / "gate"
    run(root, register, card, token(register, "gate-20"))
    etc, state = root / "etc/kgate", root / "var/lib/kgate"
    local = etc / "terminal.toml.d" / "local.toml"
    text = '# an HDMI panel\n[display]\nbackend = "null"\n[screen]\nwidth = 1024\nheight = 600\n'
    local.write_text(text, encoding="utf-8")
    again = provision(LocalRoot(root), register=register.url, token=None, camera=f"replay:{card}",
                      gate={"language": "ru", "relay_pin": 24})  # fmt: skip
    assert {r.step: r.status for r in again}["config"] == "changed"  # terminal.toml rewritten ...
    provisioned = (etc / "terminal.toml").read_text(encoding="utf-8")
    assert 'backend = "framebuffer"' in provisioned and "relay_pin = 24" in provisioned
    assert local.read_text(encoding="utf-8") == text  # ... the drop-in untouched
    terminal = load_terminal_config(etc / "terminal.toml")
    assert terminal.display.backend == "null" and terminal.screen.size == (1024, 600)
    assert (
        terminal.gate.language == "ru" and terminal.feedback is not None and terminal.feedback.relay_pin == 24
    )
    screen = next(r for r in again if r.step == "screen")
    assert screen.detail.startswith("idle screen 1024x600 (ru) for the null display")
    with Image.open(state / SCREEN_PNG) as png:
        assert png.size == (1024, 600)


def test_a_dropin_the_terminal_would_refuse_fails_the_self_test_naming_the_key(
    register: LocalRegister, card: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gate"
    run(root, register, card, token(register, "gate-21"))
    local = root / "etc/kgate/terminal.toml.d/local.toml"
    local.write_text("[feedback]\nred_pin = 17\n", encoding="utf-8")
    with pytest.raises(StepError, match=r"^step selftest failed: .*feedback\.red_pin: GPIO17 is already"):
        run(root, register, card, None)
    assert local.read_text(encoding="utf-8") == "[feedback]\nred_pin = 17\n"


def test_gate_options_are_checked_before_anything_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "gate"
    for gate, message in (
        ({"red_pin": 17}, "--red-pin: GPIO17 is already --green-pin"),
        ({"panel": [100, 480]}, "--panel: 100 must be an integer in [320, 3840]"),
        ({"language": "de"}, "--language: 'de' is not one of kk, ru, en"),
        ({"in_button_pin": 40}, "--in-button-pin: 40 is not a BCM GPIO number (0–27)"),
        ({"panel": [480, 800]}, "--panel: 480 must not be less than --panel (landscape)"),
        ({"in_button_pin": None}, "gate setting in_button_pin: expected a BCM GPIO number, got None"),
        ({"panel": "800x480"}, "gate setting panel: expected [width, height], got '800x480'"),
        ({"screen": "big"}, "unknown gate setting 'screen' (known: " + ", ".join(GATE_DEFAULTS) + ")"),
    ):
        with pytest.raises(UsageError) as err:
            provision(LocalRoot(root), register="http://127.0.0.1:1", token=None, gate=gate)
        assert str(err.value) == message
    assert not root.exists()
    argv = ["provision", "root@127.0.0.1", "--port", "1", "--register", "http://127.0.0.1:1", "--token", "t"]
    for extra, message in (  # argparse's own errors: its usage, then one error line
        (["--panel", "800"], "argument --panel: '800': expected WIDTHxHEIGHT in pixels, e.g. 800x480"),
        (
            ["--buzzer-pin", "GPIO22"],
            "argument --buzzer-pin: 'GPIO22': expected a BCM GPIO number (0-27)",
        ),
        (["--display", "hdmi"], "argument --display: invalid choice: 'hdmi'"),
        (["--in-button-pin", "none"], "argument --in-button-pin: 'none': expected a BCM GPIO number"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, *extra])
        last = capsys.readouterr().err.splitlines()[-1]
        assert exit_.value.code == 2 and last.startswith("kgate provision: error: " + message), last
    # Checked by the terminal's config reader, named by option (port 1 would refuse a connection).
    assert main([*argv, "--out-button-pin", "5"]) == 2
    assert capsys.readouterr().err == "kgate: error: --out-button-pin: GPIO5 is already --in-button-pin\n"


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
    unproven = "(the device has no key left; the key it names is that device's)"
    assert (again[-1].status, again[-1].detail) == (
        "unchanged",
        f"{origin} is revoked at the register {unproven}",
    )


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[1A\r\u202e"


@dataclass
class LyingRoot(LocalRoot):
    """A gate whose software lies: each JSON line its step runner prints goes through ``lie`` first."""

    lie: Callable[[dict[str, str]], dict[str, str]] = lambda row: row

    def run(
        self, command: str, *, stdin: str | None = None, timeout: float = 60, ok: Sequence[int] = (0,)
    ) -> tuple[int, str]:
        status, out = super().run(command, stdin=stdin, timeout=timeout, ok=ok)
        lines = []
        for line in out.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            lines.append(json.dumps(self.lie(row)) if isinstance(row, dict) else line)
        return status, "\n".join(lines) + "\n"


def two_gates(register: LocalRegister, card: Path, tmp_path: Path, gates: tuple[str, str]) -> list[Path]:
    roots = [tmp_path / gate for gate in gates]
    for root, gate in zip(roots, gates, strict=True):
        run(root, register, card, token(register, gate))
    return roots


def origin_of(root: Path) -> str:
    return str(json.loads((root / "var/lib/kgate/enrolment.json").read_text(encoding="utf-8"))["origin"])


def live(register: LocalRegister, origin: str) -> bool:
    device = register.store.device_by_origin(origin)
    assert device is not None
    return not device.disabled


def test_a_gate_that_reports_another_gates_origin_gets_only_itself_revoked(
    register: LocalRegister, register_db: Path, card: Path, tmp_path: Path
) -> None:
    """The origin a gate reports decides nothing: its key, proven over a fresh challenge, does. What it
    prints reaches the technician with every control character escaped."""
    liar, honest = two_gates(register, card, tmp_path, ("gate-7", "gate-8"))
    liar_origin, honest_origin = origin_of(liar), origin_of(honest)
    ident = liar / "var/lib/kgate/enrolment.json"  # the identity the old decommission revoked by
    ident.write_text(ident.read_text(encoding="utf-8").replace(liar_origin, honest_origin), encoding="utf-8")

    def lie(row: dict[str, str]) -> dict[str, str]:
        return {**row, "origin": honest_origin, "detail": f"{honest_origin}{ESCAPES}{row['detail']}"}

    shown_lines: list[str] = []
    results = decommission(
        LyingRoot(liar, lie=lie), db=str(register_db), by="technician", skip_sync=True,
        on_step=lambda r: shown_lines.append(f"{r.step} {r.status} {r.detail}"),
    )  # fmt: skip
    assert results[-1] == StepResult("revoke", "changed", f"revoked {liar_origin} (decommissioned, by "
                                     "technician): its pushes get 403")  # fmt: skip
    assert not live(register, liar_origin) and live(register, honest_origin)
    assert not (liar / "var/lib/kgate/device.key").exists()
    assert len(shown_lines) == len(results)
    for line in shown_lines:
        assert not [c for c in line if unicodedata.category(c) in ("Cc", "Cf")], line
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1A\\x0d\\u202e" in shown_lines[0]


def test_shown_escapes_what_could_move_or_hide_text() -> None:
    assert shown("K-7 ә ғ қ ң ө ұ ү һ і: ok") == "K-7 ә ғ қ ң ө ұ ү һ і: ok"
    assert shown("a\x1b[2Jb\x07\u200bc\U000e0001") == "a\\x1b[2Jb\\x07\\u200bc\\U000e0001"


@pytest.mark.parametrize("forgery", ["its own signature", "an old signature of the other gate"])
def test_a_gate_that_names_another_gates_key_is_refused_before_anything_changes(
    register: LocalRegister, register_db: Path, card: Path, tmp_path: Path, forgery: str
) -> None:
    gates = ("gate-9", "gate-10") if forgery == "its own signature" else ("gate-11", "gate-12")
    liar, honest = two_gates(register, card, tmp_path, gates)
    honest_key = honest / "var/lib/kgate/device.key"
    old_proof = prove_key(honest_key, secrets.token_urlsafe(32))  # a proof of an earlier challenge

    def lie(row: dict[str, str]) -> dict[str, str]:
        if row.get("step") != "identify":
            return row
        return {**row, **(old_proof if forgery != "its own signature" else {"vkey": old_proof["vkey"]})}

    refused = "the device's signature over this run's challenge does not verify with the key it names"
    with pytest.raises(
        StepError, match=rf"^step identify failed: {refused}; nothing changed, nothing revoked$"
    ):
        decommission(LyingRoot(liar, lie=lie), db=str(register_db), by="technician", skip_sync=True)
    assert live(register, origin_of(liar)) and live(register, origin_of(honest))
    assert (liar / "var/lib/kgate/device.key").exists() and honest_key.exists()
    assert not (liar / "var/lib/kgate-decommissioned").exists()


def test_without_db_the_operator_revokes_the_proven_key(
    register: LocalRegister, register_db: Path, card: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root,) = [tmp_path / "gate"]
    run(root, register, card, token(register, "gate-13"))
    origin = origin_of(root)
    results = decommission(LocalRoot(root), db=None, skip_sync=True)
    assert results[-1].status == "warning"
    command = results[-1].detail.removeprefix("operator step at the register: kgate ").split()
    assert command[:4] == ["register", "device", "revoke", "--key"] and command[-2:] == ["--db", "DB"]
    assert live(register, origin)
    assert main([*command[:-1], str(register_db)]) == 0
    assert capsys.readouterr().out.startswith(f"revoked {origin}:")
    assert not live(register, origin)


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


def test_provision_reads_the_token_file_before_it_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kgate provision --token-file`` (the form the README shows): a bad file is refused in one line,
    before any SSH connection (port 1 would refuse it)."""
    argv = ["provision", "root@127.0.0.1", "--port", "1", "--register", "http://127.0.0.1:1"]
    (tmp_path / "empty").write_text("\n")
    for path, message in (
        (tmp_path / "none", "cannot read --token-file"),
        (tmp_path / "empty", "no enrolment"),
    ):
        assert main([*argv, "--token-file", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


@dataclass
class OddArch(LocalRoot):
    """A device whose ``uname -m`` answers with a path and a terminal escape instead of a CPU name."""

    def run(
        self, command: str, *, stdin: str | None = None, timeout: float = 60, ok: Sequence[int] = (0,)
    ) -> tuple[int, str]:
        status, out = super().run(command, stdin=stdin, timeout=timeout, ok=ok)
        if command.startswith("uname -m;"):
            out = "../../x86_64\x1b]0;pwned\x07\n" + out.split("\n", 1)[1]
        return status, out


def test_a_device_reporting_an_odd_architecture_is_refused_and_shown_escaped(tmp_path: Path) -> None:
    with pytest.raises(StepError) as err:
        provision(OddArch(tmp_path / "gate"), register="http://127.0.0.1:1", token=None)
    assert (
        str(err.value) == "step os: the device reports the CPU architecture '../../x86_64\\x1b]0;pwned\\x07'"
    )
    assert not (tmp_path / "gate").exists()
