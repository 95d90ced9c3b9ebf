"""The on-device provisioning steps: the ONE implementation that ``kgate provision`` and the Ansible role run.

This file is copied to the gate with a bundle (the wheelhouse, the unit files, sysusers.d/tmpfiles.d
snippets, ``system-packages.sh``) and run there as root with the system Python, before kgate exists on
the device, so it uses the standard library only. It reads its settings as one JSON object on stdin
(the enrolment token never appears on a command line), runs the steps in order, and prints one JSON line
per step: ``{"step", "status", "detail"}`` with status ``changed``, ``unchanged``, ``would change``
(``--dry-run``), ``warning`` or ``failed``. It stops at the first failure; every step checks the state
first and only then acts, so a second run changes nothing and a failed run is finished by the next one.

Usage on the device: ``python3 device.py BUNDLE_DIR [--dry-run] [--decommission] < settings.json``.
``--decommission`` runs the other action, :data:`DECOMMISSION` (key proven, units stopped, final sync, keys
destroyed, units removed, state archived), with the same reporting and the same check-then-act rule;
``--identify`` runs only its first step (the device key's signature over the technician's challenge).

``--root DIR`` runs the same steps against a directory on this machine instead of a device's ``/`` (the
demo's simulated gate, over :class:`provisioning.local.LocalRoot`), as the calling user: there is no apt,
no service user and no service manager there, so the steps that need them report ``skipped`` and say
why, the units are installed and enabled with ``systemctl --root`` (only copied, with a warning, where
this machine has no systemctl), and kgate is the one of the Python running this file. Everything
else (enrolment, configuration, reporting, idempotence) is the same code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITES = {"bookworm"}
DISTROS = {"debian", "raspbian"}
ARCHES = {"aarch64", "armv7l", "x86_64"}
MIN_PYTHON = (3, 11)
SERVICE_USER = "kgate"
CMD_TIMEOUT = 900  # apt and pip on a slow SD card
ROSTER_WAIT_S = 60  # the sync agent's first roster update after its start
UNITS = ("kgate-terminal.service", "kgate-sync.service")


@dataclass(frozen=True)
class Target:
    """Where the steps act: a device's own ``/`` (as root, with apt and systemd), or ``--root DIR``."""

    root: Path = Path("/")

    @property
    def local(self) -> bool:
        """A directory root on this machine (no apt, no service user, no service manager)."""
        return self.root != Path("/")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def venv(self) -> Path:
        return self.path("/opt/kgate/venv")

    @property
    def stamp(self) -> Path:
        return self.venv / ".kgate-wheelhouse"

    @property
    def config(self) -> Path:
        return self.path("/etc/kgate")

    @property
    def state(self) -> Path:
        return self.path("/var/lib/kgate")

    @property
    def systemd(self) -> Path:
        return self.path("/etc/systemd/system")

    @property
    def archive(self) -> Path:
        return self.path("/var/lib/kgate-decommissioned")

    @property
    def roster_root(self) -> Path:
        """Installed by the enrolment once a roster is published."""
        return self.state / "roster-tuf" / "root.json"

    @property
    def python(self) -> str:
        """The Python that has kgate: the venv's on a device, the running one in a local root."""
        return sys.executable if self.local else str(self.venv / "bin" / "python")

    @property
    def has_kgate(self) -> bool:
        return self.local or (self.venv / "bin" / "kgate").exists()

    def service(self, *argv: str) -> tuple[list[str], dict[str, str] | None]:
        """``argv`` run as the service user, with the directories systemd would give the units."""
        if not self.local:
            return ["runuser", "-u", SERVICE_USER, "--", *argv], None
        env = {**os.environ, "STATE_DIRECTORY": str(self.state), "CONFIGURATION_DIRECTORY": str(self.config)}
        return list(argv), env

    def kgate(self, *args: str) -> tuple[list[str], dict[str, str] | None]:
        """A ``kgate`` command run as the service user."""
        if self.local:
            return self.service(sys.executable, "-m", "kgate", *args)
        return self.service(str(self.venv / "bin" / "kgate"), *args)


class StepFailed(Exception):
    """A step could not reach its state; the message says what to do."""


@dataclass
class Run:
    """One run of the steps: the bundle, the settings from stdin, and what happened so far."""

    bundle: Path
    settings: dict[str, Any]
    dry_run: bool
    target: Target = field(default_factory=Target)
    changed: set[str] = field(default_factory=set)
    ledger_before: int | None = None  # entries before the units step (re)started the terminal
    vkey: str | None = None  # the device key's public half, once the identify step proved it

    def report(self, step: str, status: str, detail: str = "", **extra: str) -> None:
        print(json.dumps({"step": step, "status": status, "detail": detail, **extra}), flush=True)

    def act(self, step: str, what: str, action: Callable[[], object]) -> None:
        """Do ``action`` (or, in a dry run, only say it would be done) and report the step changed."""
        if self.dry_run:
            self.report(step, "would change", what)
            return
        action()
        self.changed.add(step)
        self.report(step, "changed", what)


def sh(
    *argv: str,
    stdin: str | None = None,
    timeout: float = CMD_TIMEOUT,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command; on failure raise :class:`StepFailed` with the end of its output."""
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise StepFailed(f"{' '.join(argv[:3])} failed: {' / '.join(tail)}")
    return proc.stdout


def install_file(src: Path, dest: Path, mode: int, group: str | None = "root") -> bool:
    """Copy ``src`` to ``dest`` unless it is identical; True if the file changed.

    ``group=None`` keeps the caller's ownership (a local root belongs to the user running the steps).
    """
    data = src.read_bytes()
    if dest.exists() and dest.read_bytes() == data and (dest.stat().st_mode & 0o777) == mode:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    if group is not None:
        shutil.chown(tmp, "root", group)
    os.replace(tmp, dest)
    return True


def os_release() -> dict[str, str]:
    values = {}
    for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        values[key] = value.strip().strip('"')
    return values


# -- the steps, in order -----------------------------------------------------------------------------
def step_os(run: Run) -> None:
    """Refuse anything but Debian / Raspberry Pi OS bookworm on a supported CPU with Python >= 3.11."""
    rel = os_release()
    distro, suite, arch = rel.get("ID", "?"), rel.get("VERSION_CODENAME", "?"), platform.machine()
    if sys.version_info < MIN_PYTHON:
        raise StepFailed(f"Python {platform.python_version()} is too old; kgate needs 3.11 or newer")
    if run.target.local:
        run.report("os", "skipped", f"local root {run.target.root}: this machine ({distro} {suite} {arch}, "
                   f"Python {platform.python_version()}) is not a gate and is not checked")  # fmt: skip
        return
    if distro not in DISTROS or suite not in SUITES:
        raise StepFailed(
            f"this is {rel.get('PRETTY_NAME', distro)}; kgate supports Raspberry Pi OS or Debian bookworm"
        )
    if arch not in ARCHES:
        raise StepFailed(f"CPU architecture {arch} is not supported ({', '.join(sorted(ARCHES))})")
    run.report("os", "unchanged", f"{distro} {suite} {arch}, Python {platform.python_version()}")


def step_packages(run: Run) -> None:
    if run.target.local:
        run.report("packages", "skipped", "a local root uses this machine's packages (no apt)")
        return
    script = str(run.bundle / "system-packages.sh")
    missing = sh("bash", script, "device", "--missing").split()
    if not missing:
        run.report("packages", "unchanged", "all system packages installed")
        return
    run.act("packages", "apt install " + " ".join(missing), lambda: sh("bash", script, "device"))


def step_user(run: Run) -> None:
    """The service user and its groups (sysusers.d), the state and config directories (tmpfiles.d)."""
    t = run.target
    if t.local:  # the calling user stands in for the service user; the directories as tmpfiles.d makes them
        missing = [d for d in (t.state, t.config) if not d.is_dir()]
        if not missing:
            run.report("user", "unchanged", f"{t.state}, {t.config} (a local root has no service user)")
            return

        def make() -> None:
            for d in missing:
                d.mkdir(mode=0o700 if d == t.state else 0o750, parents=True)

        run.act("user", "create " + ", ".join(map(str, missing)), make)
        return
    sysusers = Path("/usr/lib/sysusers.d/kgate.conf")
    tmpfiles = Path("/usr/lib/tmpfiles.d/kgate.conf")
    src_users, src_tmp = run.bundle / "sysusers.conf", run.bundle / "tmpfiles.conf"
    todo = []
    if not sysusers.exists() or sysusers.read_bytes() != src_users.read_bytes():
        todo.append(str(sysusers))
    if not tmpfiles.exists() or tmpfiles.read_bytes() != src_tmp.read_bytes():
        todo.append(str(tmpfiles))
    groups = set(sh("id", "-nG", SERVICE_USER, check=False).split())
    if not {SERVICE_USER, "video", "gpio", "render"} <= groups:
        todo.append(f"user {SERVICE_USER} in video, gpio, render")
    if not t.state.is_dir() or not t.config.is_dir():
        todo.append(f"{t.state}, {t.config}")
    if not todo:
        have = f"user {SERVICE_USER}, groups video gpio render, {t.state}, {t.config}"
        run.report("user", "unchanged", have)
        return

    def apply() -> None:
        install_file(src_users, sysusers, 0o644)
        install_file(src_tmp, tmpfiles, 0o644)
        sh("systemd-sysusers", str(sysusers))
        for group in ("video", "gpio", "render"):
            sh("usermod", "-a", "-G", group, SERVICE_USER)
        sh("systemd-tmpfiles", "--create", str(tmpfiles))

    run.act("user", ", ".join(todo), apply)


def step_venv(run: Run) -> None:
    """A venv that sees the system's site packages (picamera2, lgpio from apt) with kgate from the wheels."""
    t = run.target
    if t.local:
        if importlib.util.find_spec("kgate") is None:
            raise StepFailed(f"{sys.executable} has no kgate: run device.py --root with a Python that has it")
        run.report("venv", "skipped", f"a local root uses this Python ({sys.executable}), no venv or wheels")
        return
    wheels = run.bundle / "wheels"
    want = (run.bundle / "wheelhouse.sha256").read_text().strip()
    have = t.stamp.read_text().strip() if t.stamp.exists() else ""
    if t.has_kgate and have == want:
        run.report("venv", "unchanged", f"{t.venv} has kgate from wheelhouse {want[:12]}")
        return
    kgate_wheel = str(next(wheels.glob("kgate-*.whl")))

    def apply() -> None:
        if not (t.venv / "bin" / "python").exists():
            sh("python3", "-m", "venv", "--system-site-packages", str(t.venv))
        pip = (t.python, "-m", "pip", "install", "--quiet", "--no-index",
               "--disable-pip-version-check", "--find-links", str(wheels))  # fmt: skip
        sh(*pip, kgate_wheel)
        sh(*pip, "--force-reinstall", "--no-deps", kgate_wheel)  # same version number, new code
        t.stamp.write_text(want + "\n")

    run.act("venv", f"install kgate into {t.venv} from wheelhouse {want[:12]}", apply)


ENROL_SCRIPT = """
import json, sys
from pathlib import Path
from kgate.errors import KgateError
from sync_agent.enrol import enrol
s = json.load(sys.stdin)
try:
    e = enrol(s["register"], s["token"], state=Path(s["state"]), ca=Path(s["ca"]) if s.get("ca") else None)
except KgateError as exc:
    sys.exit(str(exc))
print(json.dumps({"origin": e.origin, "kindergarten": e.kindergarten, "gate": e.gate}))
"""


def enrolment(t: Target) -> dict[str, Any] | None:
    path = t.state / "enrolment.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def step_enrol(run: Run) -> None:
    """Enrol ON the device as the service user: the key is made here and never leaves."""
    t = run.target
    register = run.settings["register"].rstrip("/")
    known = enrolment(t)
    if known is not None and known.get("register_url", "").rstrip("/") == register:
        run.report("enrol", "unchanged", f"enrolled as {known['origin']}")
        return
    if run.dry_run:
        run.report("enrol", "would change", f"enrol with the register at {register}")
        return
    if not run.settings.get("token"):
        raise StepFailed("not enrolled yet: pass --token (kgate register token create)")
    ca = run.settings.get("ca_pem")
    ca_path = t.config / "register-ca.pem"
    if ca:
        ca_path.write_text(ca)
    body = {"register": register, "token": run.settings["token"], "state": str(t.state),
            "ca": str(ca_path) if ca else None}  # fmt: skip
    argv, env = t.service(t.python, "-c", ENROL_SCRIPT)
    proc = subprocess.run(
        argv, input=json.dumps(body), capture_output=True, text=True, timeout=120, check=False, env=env
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        raise StepFailed(f"enrolment refused, nothing stored: {lines[-1]}")
    ident = json.loads(proc.stdout)
    run.changed.add("enrol")
    run.report(
        "enrol", "changed", f"enrolled as {ident['origin']} ({ident['kindergarten']} / {ident['gate']})"
    )


def _toml(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


#: The gate's own settings (``settings["gate"]`` from ``kgate provision``'s options or the Ansible role's
#: variables), with their Raspberry Pi defaults: the official 7" Touch Display (800x480) on the
#: framebuffer, the pins of hardware/README.md's wiring, no door relay. Checked by kgate on the
#: workstation (provisioning/provision.py) and again by ``--check-config`` in the self-test.
GATE_DEFAULTS: dict[str, Any] = {
    "display": "framebuffer",
    "panel": [800, 480],
    "language": "kk",
    "pickup": "off",
    "face_mode": "qr",
    "feedback": True,
    "green_pin": 17,
    "red_pin": 27,
    "buzzer_pin": 22,
    "relay_pin": None,
    "in_button_pin": 5,
    "out_button_pin": 6,
}
PINS = ("green_pin", "red_pin", "buzzer_pin", "relay_pin", "in_button_pin", "out_button_pin")


def gate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings["gate"]`` over :data:`GATE_DEFAULTS`; unknown keys are refused."""
    given = settings.get("gate") or {}
    if not isinstance(given, dict):
        raise StepFailed("the gate settings are not a JSON object")
    unknown = sorted(set(given) - set(GATE_DEFAULTS))
    if unknown:
        raise StepFailed(f"unknown gate setting {unknown[0]!r} (known: {', '.join(GATE_DEFAULTS)})")
    gate = {**GATE_DEFAULTS, **given}
    panel = gate["panel"]
    if not (isinstance(panel, list) and len(panel) == 2 and all(type(v) is int for v in panel)):
        raise StepFailed(f"gate setting panel: expected [width, height], got {panel!r}")
    for pin in PINS:  # the terminal checks the numbers (hardware/feedback.py); here only the types
        if (gate[pin] is not None or pin != "relay_pin") and type(gate[pin]) is not int:
            # only the relay is optional: TOML has no null, and a missing button pin means its default
            also = " or null" if pin == "relay_pin" else ""
            raise StepFailed(f"gate setting {pin}: expected a BCM GPIO number{also}, got {gate[pin]!r}")
    for key in ("display", "language", "pickup", "face_mode"):
        if not isinstance(gate[key], str) or not gate[key]:
            raise StepFailed(f"gate setting {key}: expected a non-empty string, got {gate[key]!r}")
    if not isinstance(gate["feedback"], bool):
        raise StepFailed(f"gate setting feedback: expected true or false, got {gate['feedback']!r}")
    return gate


def gate_toml(gate: dict[str, Any]) -> str:
    """The ``[gate]``, ``[screen]``, ``[display]`` and ``[feedback]`` tables of ``terminal.toml``."""
    width, height = gate["panel"]
    lines = ["", "[gate]", f"mode = {_toml(gate['face_mode'])}", f"language = {_toml(gate['language'])}",
             f"pickup = {_toml(gate['pickup'])}", "", "[screen]", f"width = {int(width)}",
             f"height = {int(height)}", "", "[display]", f"backend = {_toml(gate['display'])}"]  # fmt: skip
    if gate["feedback"]:
        lines += ["", "[feedback]"]
        lines += [f"{pin} = {int(gate[pin])}" for pin in PINS if gate[pin] is not None]
    return "\n".join(lines) + "\n"


def config_texts(run: Run, ident: dict[str, Any]) -> dict[str, str]:
    """``terminal.toml`` (the bundle's, with the enrolled origin) and ``sync.toml`` (from the enrolment)."""
    t = run.target
    terminal = (run.bundle / "terminal.toml").read_text(encoding="utf-8")
    terminal = terminal.replace("@ORIGIN@", _toml(ident["origin"])) + gate_toml(gate_settings(run.settings))
    sync = [
        f"# written by kgate provision from the enrolment ({t.state / 'enrolment.json'})",
        f"ledger = {_toml(t.state / 'ledger.db')}",
        f"state = {_toml(t.state / 'sync')}",
        f"key = {_toml(t.state / 'device.key')}",
        f"terminal_status = {_toml(t.state / 'terminal-status.json')}",  # where the terminal writes it
        f"register = {_toml(ident['register_url'])}",
        f"register_vkey = {_toml(ident['register_vkey'])}",
    ]
    if run.settings.get("ca_pem"):
        sync.append(f"ca = {_toml(t.config / 'register-ca.pem')}")
    repo = ident.get("roster_repository")
    if isinstance(repo, str):  # the agent updates the terminal's roster over TUF (docs/rosters.md)
        sync += [f"roster_db = {_toml(t.state / 'roster.db')}", f"kindergarten = {_toml(repo)}",
                 f"roster_tuf = {_toml(t.roster_root.parent)}"]  # fmt: skip
    return {"terminal.toml": terminal, "sync.toml": "\n".join(sync) + "\n"}


def _differs(run: Run, name: str, text: str) -> bool:
    """Whether ``/etc/kgate/NAME`` differs from ``text`` (or, for camera images, from the bundle's copy)."""
    dest = run.target.config / name
    if not dest.exists():
        return True
    if name.startswith("camera/"):
        return dest.read_bytes() != (run.bundle / name).read_bytes()
    return dest.read_text(encoding="utf-8") != text


def step_config(run: Run) -> None:
    config = run.target.config
    ident = enrolment(run.target)
    if ident is None:  # only in a dry run: enrolment would come first
        run.report("config", "would change", f"write {config}/terminal.toml and sync.toml")
        return
    texts = config_texts(run, ident)
    camera = run.bundle / "camera"  # replay images for a gate without a camera (tests, demos)
    if camera.is_dir():
        texts.update({f"camera/{p.name}": "" for p in camera.iterdir()})
    stale = [n for n, t in texts.items() if _differs(run, n, t)]
    if not stale:
        run.report("config", "unchanged", f"{config}/terminal.toml, sync.toml")
        return

    def apply() -> None:
        for name in stale:
            src = run.bundle / name
            if not name.startswith("camera/"):
                src = run.bundle / f"{name}.new"
                src.write_text(texts[name], encoding="utf-8")
            install_file(src, config / name, 0o640, None if run.target.local else SERVICE_USER)
        (config / "terminal.toml.d").mkdir(mode=0o755, exist_ok=True)  # local changes; never written here

    run.act("config", "write " + ", ".join(f"{config}/{n}" for n in stale), apply)


def systemctl(t: Target, *args: str, check: bool = True) -> str:
    """``systemctl`` on the device, or ``systemctl --root`` (unit files only, offline) in a local root."""
    if not t.local:
        return sh("systemctl", *args, check=check)
    return sh("systemctl", f"--root={t.root}", *args, check=check)


def step_units(run: Run) -> None:
    """Install, enable and start the units; restart them when their code or configuration changed."""
    t = run.target
    stale = [u for u in UNITS if not (t.systemd / u).exists() or (t.systemd / u).read_bytes()
             != (run.bundle / u).read_bytes()]  # fmt: skip
    if t.local and shutil.which("systemctl") is None:  # a container without systemd: copied, not enabled
        local_units_without_systemctl(run, stale)
        return
    disabled = [u for u in UNITS if not (t.systemd / u).exists()
                or systemctl(t, "is-enabled", u, check=False).strip() != "enabled"]  # fmt: skip
    if t.local:  # no service manager: installed and enabled (for the image this root may become), not run
        not_run = "not started: a local root has no service manager (the caller runs the gate)"
        if not (stale or disabled):
            run.report("units", "unchanged", f"installed and enabled: {', '.join(UNITS)}; {not_run}")
            return

        def install() -> None:
            for unit in stale:
                install_file(run.bundle / unit, t.systemd / unit, 0o644, None)
            systemctl(t, "enable", *UNITS)

        what = f"install {len(stale)}, enable {len(disabled)} (systemctl --root); {not_run}"
        run.act("units", what, install)
        return
    stopped = [u for u in UNITS if sh("systemctl", "is-active", u, check=False).strip() != "active"]
    restart = bool(run.changed & {"venv", "config"}) or bool(stale)
    if not (stale or disabled or stopped or restart):
        run.report("units", "unchanged", "enabled and active: " + ", ".join(UNITS))
        return

    def apply() -> None:
        run.ledger_before = ledger_size(t)
        for unit in stale:
            install_file(run.bundle / unit, t.systemd / unit, 0o644)
        sh("systemctl", "daemon-reload")
        sh("systemctl", "enable", *UNITS)
        sh("systemctl", "restart" if restart else "start", "--no-block", *UNITS)

    run.act("units", f"install {len(stale)}, enable {len(disabled)}, start {len(stopped)}", apply)


def local_units_without_systemctl(run: Run, stale: list[str]) -> None:
    """The unit files into a local root on a machine without systemd: installed, and a warning."""
    t = run.target
    not_enabled = "not enabled: this machine has no systemctl (apt install systemd)"
    if stale and not run.dry_run:
        for unit in stale:
            install_file(run.bundle / unit, t.systemd / unit, 0o644, None)
        run.changed.add("units")
    verb = "would install" if run.dry_run else "installed"
    run.report("units", "warning", f"{verb} {len(stale)} unit files; {not_enabled}")


def ledger_size(t: Target) -> int | None:
    """The ledger's entry count from ``kgate verify`` (None: no ledger); fails if it does not verify."""
    ledger = t.state / "ledger.db"
    if not ledger.exists() or not t.has_kgate:
        return None
    argv, env = t.kgate("verify", "--json", str(ledger))
    out = sh(*argv, timeout=120, env=env)
    return int(json.loads(out)["size"])


def roster_version(t: Target) -> int | None:
    """The roster version installed in the terminal's database (read-only), or None."""
    path = t.state / "roster.db"
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return int(row[0]) if row else None


def check_register(run: Run) -> None:
    register = run.settings["register"].rstrip("/")
    try:
        with urllib.request.urlopen(register + "/", timeout=10) as resp:  # noqa: S310 (http(s) only)
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError as exc:
        raise StepFailed(f"the register at {register} is not reachable from the device: {exc}") from None
    run.report("register", "unchanged", f"{register} reachable from the device (HTTP {code})")


SCREEN_PNG = "selftest-screen.png"  # under the state directory: the idle screen the self-test drew

#: Run by the service user with kgate's Python: the idle screen as the terminal draws it, from its own
#: configuration (drop-ins merged), into a PNG. No clock in the status bar, so a second run draws the
#: same bytes (provisioning stays idempotent).
SCREEN_SCRIPT = """
import json, sys
from pathlib import Path
from kgate.errors import KgateError
from terminal.config import ConfigError, load_config
from terminal.screen import GateScreen
from terminal.screen.state import ScreenState, StatusInfo
try:
    c = load_config(sys.argv[1])
except ConfigError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
try:
    state = ScreenState(status=StatusInfo(roster_version=json.loads(sys.argv[3])), lang=c.gate.language,
                        mode=c.gate.mode)
    GateScreen(c.screen).render(state).save(sys.argv[2], format="PNG")
except (KgateError, OSError) as exc:
    sys.exit(str(exc))
print(json.dumps({"size": list(c.screen.size), "display": c.display.backend, "lang": c.gate.language}))
"""


def step_screen(run: Run) -> None:
    """Draw the configured idle screen into ``/var/lib/kgate/selftest-screen.png`` and name the file."""
    t = run.target
    png = t.state / SCREEN_PNG
    argv, env = t.service(t.python, "-c", SCREEN_SCRIPT, str(t.config / "terminal.toml"), str(png),
                          json.dumps(roster_version(t)))  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        if proc.returncode == 3:  # the terminal would refuse to start as well
            raise StepFailed(f"{t.config / 'terminal.toml'} (with terminal.toml.d/) is refused: {lines[-1]}")
        run.report("screen", "warning", f"the idle screen was not drawn: {lines[-1]}")
        return
    drawn = json.loads(proc.stdout)
    width, height = drawn["size"]
    run.report("screen", "unchanged", f"idle screen {width}x{height} ({drawn['lang']}) for the "
               f"{drawn['display']} display drawn to {png}")  # fmt: skip


def selftest_local(run: Run) -> None:
    """A local root's gate is not running: its configuration is checked the way the terminal reads it."""
    t = run.target
    argv, env = t.kgate("terminal", "run", "--check-config", "--config", str(t.config / "terminal.toml"))
    sh(*argv, timeout=120, env=env)
    run.report("camera", "skipped", f"not running; {t.config / 'terminal.toml'} passes --check-config")
    step_screen(run)
    size = ledger_size(t)
    if size is None:
        run.report("ledger", "skipped", "no ledger yet: the gate appends its boot entry when it starts")
    else:
        run.report("ledger", "unchanged", f"{size} entries, verifies")
    check_register(run)
    version = roster_version(t)
    if version is not None:
        run.report("roster", "unchanged", f"version {version} installed")
    elif t.roster_root.exists():
        run.report("roster", "skipped", "published (trusted root installed): the sync agent's first update "
                   "delivers it")  # fmt: skip
    else:
        run.report("roster", "unchanged", "no roster published yet: none delivered to this gate")


def step_selftest(run: Run) -> None:
    """The checks a technician would make by hand, one line each; changes nothing on the device but the
    self-test's picture of the idle screen (``/var/lib/kgate/selftest-screen.png``)."""
    t = run.target
    if run.dry_run:
        for check in ("camera", "screen", "ledger", "register", "roster"):
            run.report(check, "unchanged", "self-test skipped in a dry run")
        return
    if t.local:
        selftest_local(run)
        return
    # Type=notify: the terminal says READY=1 only once the camera delivered a frame.
    deadline = time.monotonic() + 90
    term = ""
    while term != "active" and time.monotonic() < deadline:
        time.sleep(0.5)
        term = sh("systemctl", "is-active", UNITS[0], check=False).strip()
    if term == "active":
        run.report("camera", "unchanged", "the terminal is running: the camera delivered a frame")
    else:
        run.report("camera", "warning", f"no camera frame: the terminal is {term} (journalctl -u {UNITS[0]})")
    step_screen(run)

    # The terminal appends its `boot` entry through its own ledger path each time it starts.
    size = ledger_size(t)
    if size is None:
        run.report("ledger", "warning", f"no ledger yet at {t.state}/ledger.db (the terminal did not start)")
    elif "units" in run.changed and size <= (run.ledger_before or 0):
        run.report("ledger", "warning", f"{size} entries: the restarted terminal appended no boot entry")
    elif "units" in run.changed:
        grew = size - (run.ledger_before or 0)
        run.report(
            "ledger", "unchanged", f"{size} entries, +{grew} appended by the terminal's start, verifies"
        )
    else:
        run.report("ledger", "unchanged", f"{size} entries, verifies (the terminal was not restarted)")

    check_register(run)

    version = roster_version(t)
    # A trusted root (from the enrolment) means a roster is published: the agent's first update,
    # right after its start, delivers it.
    deadline = time.monotonic() + ROSTER_WAIT_S
    while version is None and t.roster_root.exists() and time.monotonic() < deadline:
        time.sleep(1)
        version = roster_version(t)
    if version is not None:
        run.report("roster", "unchanged", f"delivered version {version}")
    elif t.roster_root.exists():
        run.report("roster", "warning", f"published but not delivered in {ROSTER_WAIT_S} s "
                   f"(journalctl -u {UNITS[1]})")  # fmt: skip
    else:
        run.report("roster", "unchanged", "no roster published yet: none delivered to this gate")


STEPS: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("os", step_os), ("packages", step_packages), ("user", step_user), ("venv", step_venv),
    ("enrol", step_enrol), ("config", step_config), ("units", step_units), ("selftest", step_selftest),
)  # fmt: skip


# -- decommissioning ---------------------------------------------------------------------------------
SECRETS = ("device.key", "face.key")  # every private key a gate holds (ledger/keys, terminal/face)


def archived_identity(t: Target) -> dict[str, Any] | None:
    """The identity of the newest archived state (a decommission that already ran), or None."""
    for path in sorted(t.archive.glob("*/enrolment.json"), reverse=True):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    return None


PROVE_SCRIPT = """
import json, sys
from pathlib import Path
from kgate.errors import KgateError
from sync_agent.enrol import prove_key
s = json.load(sys.stdin)
try:
    proof = prove_key(Path(s["key"]), s["challenge"])
except (KgateError, ValueError) as exc:
    sys.exit(str(exc))
print(json.dumps(proof))
"""
PUBLIC_KEY = "device.vkey"  # the device key's public half, kept with the archive when the key is destroyed


def archived_vkey(t: Target) -> str | None:
    """The public key of the newest archived state's destroyed device key, or None."""
    for path in sorted(t.archive.glob(f"*/{PUBLIC_KEY}"), reverse=True):
        return path.read_text(encoding="ascii").strip()
    return None


def prove(run: Run) -> dict[str, str]:
    """The device key's vkey and its signature over the technician's challenge, made by kgate's own code
    as the service user (the key never leaves the device). The origin the device reports proves nothing:
    the technician's side identifies the device by this key (provisioning/decommission.py)."""
    t = run.target
    challenge = run.settings.get("challenge")
    if not isinstance(challenge, str):
        raise StepFailed("no challenge to sign in the settings (run kgate decommission)")
    if not t.has_kgate:
        raise StepFailed(f"kgate is missing in {t.venv}: cannot sign the challenge (provision again)")
    argv, env = t.service(t.python, "-c", PROVE_SCRIPT)
    body = {"key": str(t.state / "device.key"), "challenge": challenge}
    proc = subprocess.run(
        argv, input=json.dumps(body), capture_output=True, text=True, timeout=120, check=False, env=env
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        raise StepFailed(f"cannot sign the challenge with the device key: {lines[-1]}")
    proof: dict[str, str] = json.loads(proc.stdout)
    return proof


def step_identify(run: Run) -> None:
    """Which device this is: its key, proven by a signature over the technician's fresh challenge.

    After a finished decommission the key is gone; its public half (archived) is named, unproven.
    """
    t = run.target
    ident = enrolment(t)
    where = "enrolled"
    if ident is None:
        ident, where = archived_identity(t), f"already decommissioned, state in {t.archive}"
    if ident is None:
        raise StepFailed(f"no enrolment on this device ({t.state}/enrolment.json): nothing to decommission")
    if (t.state / "device.key").exists():
        proof = prove(run)
        run.vkey = proof["vkey"]
        detail = f"says {ident['origin']} ({where}); signed the challenge with its device key"
        run.report("identify", "unchanged", detail, **proof)
        return
    vkey = archived_vkey(t)
    detail = f"says {ident['origin']} ({where}); no device key left to sign the challenge with"
    run.report("identify", "unchanged", detail, **({"vkey": vkey} if vkey else {}))


def step_stop(run: Run) -> None:
    """Stop and disable the units first: no new entries, and no push racing the final sync."""
    t = run.target
    if t.local:
        run.report("stop", "skipped", "a local root has no service manager: nothing runs")
        return
    active = [
        u for u in UNITS if sh("systemctl", "is-active", u, check=False).strip() in {"active", "activating"}
    ]
    enabled = [u for u in UNITS if sh("systemctl", "is-enabled", u, check=False).strip() == "enabled"]
    if not (active or enabled):
        run.report("stop", "unchanged", "units stopped and disabled")
        return
    run.act(
        "stop",
        f"stop {len(active)}, disable {len(enabled)}",
        lambda: sh("systemctl", "disable", "--now", *UNITS),
    )


def step_final_sync(run: Run) -> None:
    """Push what the register has not got (``kgate sync once`` as the service user) while the key exists."""
    t = run.target
    conf, key = t.config / "sync.toml", t.state / "device.key"
    if not key.exists():
        run.report("final-sync", "unchanged", "no device key any more: nothing can be pushed")
        return
    if run.settings.get("skip_sync"):
        run.report("final-sync", "warning", f"skipped (--skip-sync); the ledger is kept in {t.archive}")
        return
    if not (conf.exists() and t.has_kgate):
        raise StepFailed(f"cannot push: {conf} or kgate is missing (provision again, or --skip-sync)")
    if run.dry_run:
        run.report("final-sync", "would change", "kgate sync once")
        return
    argv, env = t.kgate("sync", "once", "--config", str(conf), "--json")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or "no output").splitlines()[-1]
        raise StepFailed(f"final sync failed, nothing destroyed: {tail} (fix it, or pass --skip-sync)")
    run.changed.add("final-sync")
    run.report(
        "final-sync", "changed", "kgate sync once: " + (proc.stdout.strip().splitlines() or ["ok"])[-1]
    )


def destroy(path: Path) -> None:
    """Overwrite a key file with random bytes, fsync, unlink it, fsync its directory.

    (On an SD card or SSD the overwrite is best effort: wear levelling may keep old blocks.)
    """
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(os.urandom(max(size, 64)))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_destroy_keys(run: Run) -> None:
    """The device key (signs the ledger, logs in to the register) and the face template key: the secrets."""
    state = run.target.state
    keys = [state / name for name in SECRETS if (state / name).exists()]
    if not keys:
        run.report("keys", "unchanged", "no private key on the device")
        return

    def apply() -> None:
        if run.vkey is not None:  # archived with the state: a second run can still name the key
            (state / PUBLIC_KEY).write_text(run.vkey + "\n", encoding="ascii")
        for key in keys:
            destroy(key)

    run.act("keys", "overwrite and remove " + ", ".join(map(str, keys)), apply)


def step_remove_units(run: Run) -> None:
    t = run.target
    present = [u for u in UNITS if (t.systemd / u).exists()]
    if not present:
        run.report("units", "unchanged", "no kgate unit installed")
        return

    def apply() -> None:
        if t.local:  # the wants/ links go with the unit files
            systemctl(t, "disable", *present)
        for unit in present:
            (t.systemd / unit).unlink()
        if not t.local:
            sh("systemctl", "daemon-reload")
            sh("systemctl", "reset-failed", *UNITS, check=False)

    run.act("units", "remove " + ", ".join(present), apply)


def step_archive(run: Run) -> None:
    """Keep the ledger, sync state and identity (public data) in an archive; STATE is left empty.

    An empty STATE is what lets the same Pi be provisioned again as a new device.
    """
    t = run.target
    left = sorted(p.name for p in t.state.iterdir()) if t.state.is_dir() else []
    if not left:
        run.report("archive", "unchanged", f"{t.state} is empty")
        return
    ident = enrolment(t) or {}
    name = str(ident.get("origin", "unknown")).replace("/", "_") + time.strftime(
        "-%Y%m%dT%H%M%SZ", time.gmtime()
    )
    dest = t.archive / name

    def apply() -> None:
        t.archive.mkdir(mode=0o700, exist_ok=True)
        dest.mkdir(mode=0o700)
        for child in left:
            os.replace(t.state / child, dest / child)

    run.act("archive", f"move {', '.join(left)} to {dest}", apply)


DECOMMISSION: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("identify", step_identify), ("stop", step_stop), ("final-sync", step_final_sync),
    ("keys", step_destroy_keys), ("units", step_remove_units), ("archive", step_archive),
)  # fmt: skip

USAGE = (
    "usage: python3 device.py BUNDLE_DIR [--dry-run] [--decommission [--identify]] [--root DIR] "
    "< settings.json"
)


def main(argv: list[str]) -> int:
    args = list(argv)
    root = Path("/")
    if "--root" in args:
        at = args.index("--root")
        if at + 1 >= len(args) or not Path(args[at + 1]).is_absolute():
            print(f"{USAGE}\n--root needs an absolute directory", file=sys.stderr)
            return 2
        root = Path(args[at + 1])
        del args[at : at + 2]
    flags = set(args[1:])
    if (
        not args
        or flags - {"--dry-run", "--decommission", "--identify"}
        or (root == Path("/") and os.geteuid())
    ):
        print(f"{USAGE}\n(as root on a device; --root DIR as any user)", file=sys.stderr)
        return 2
    os.umask(0o022)  # the venv must be readable by the service user whatever the login's umask
    run = Run(Path(args[0]), json.load(sys.stdin), "--dry-run" in flags, Target(root))
    steps = DECOMMISSION if "--decommission" in flags else STEPS
    for name, step in DECOMMISSION[:1] if "--identify" in flags else steps:
        try:
            step(run)
        except StepFailed as exc:
            run.report(name, "failed", str(exc))
            return 1
        except OSError as exc:  # a full disk, a read-only file system: named, and the next run goes on
            run.report(name, "failed", f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
