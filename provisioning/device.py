"""The on-device provisioning steps: the ONE implementation that ``kgate provision`` and the Ansible role run.

This file is copied to the gate with a bundle (the wheelhouse, the unit files, sysusers.d/tmpfiles.d
snippets, ``system-packages.sh``) and run there as root with the system Python, before kgate exists on
the device, so it uses the standard library only. It reads its settings as one JSON object on stdin
(the enrolment token never appears on a command line), runs the steps in order, and prints one JSON line
per step: ``{"step", "status", "detail"}`` with status ``changed``, ``unchanged``, ``would change``
(``--dry-run``), ``warning`` or ``failed``. It stops at the first failure; every step checks the state
first and only then acts, so a second run changes nothing and a failed run is finished by the next one.

Usage on the device: ``python3 device.py BUNDLE_DIR [--dry-run] [--decommission] < settings.json``.
``--decommission`` runs the other action, :data:`DECOMMISSION` (units stopped, final sync, keys destroyed,
units removed, state archived), with the same reporting and the same check-then-act rule.
"""

from __future__ import annotations

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

VENV = Path("/opt/kgate/venv")
KGATE = VENV / "bin" / "kgate"
STAMP = VENV / ".kgate-wheelhouse"
CONFIG = Path("/etc/kgate")
STATE = Path("/var/lib/kgate")
SYSTEMD = Path("/etc/systemd/system")
UNITS = ("kgate-terminal.service", "kgate-sync.service")
SUITES = {"bookworm"}
DISTROS = {"debian", "raspbian"}
ARCHES = {"aarch64", "armv7l", "x86_64"}
MIN_PYTHON = (3, 11)
SERVICE_USER = "kgate"
CMD_TIMEOUT = 900  # apt and pip on a slow SD card


class StepFailed(Exception):
    """A step could not reach its state; the message says what to do."""


@dataclass
class Run:
    """One run of the steps: the bundle, the settings from stdin, and what happened so far."""

    bundle: Path
    settings: dict[str, Any]
    dry_run: bool
    changed: set[str] = field(default_factory=set)
    ledger_before: int | None = None  # entries before the units step (re)started the terminal

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


def sh(*argv: str, stdin: str | None = None, timeout: float = CMD_TIMEOUT, check: bool = True) -> str:
    """Run a command; on failure raise :class:`StepFailed` with the end of its output."""
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise StepFailed(f"{' '.join(argv[:3])} failed: {' / '.join(tail)}")
    return proc.stdout


def install_file(src: Path, dest: Path, mode: int, group: str = "root") -> bool:
    """Copy ``src`` to ``dest`` unless it is identical; True if the file changed."""
    data = src.read_bytes()
    if dest.exists() and dest.read_bytes() == data and (dest.stat().st_mode & 0o777) == mode:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
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
    if distro not in DISTROS or suite not in SUITES:
        raise StepFailed(
            f"this is {rel.get('PRETTY_NAME', distro)}; kgate supports Raspberry Pi OS or Debian bookworm"
        )
    if arch not in ARCHES:
        raise StepFailed(f"CPU architecture {arch} is not supported ({', '.join(sorted(ARCHES))})")
    if sys.version_info < MIN_PYTHON:
        raise StepFailed(f"Python {platform.python_version()} is too old; kgate needs 3.11 or newer")
    run.report("os", "unchanged", f"{distro} {suite} {arch}, Python {platform.python_version()}")


def step_packages(run: Run) -> None:
    script = str(run.bundle / "system-packages.sh")
    missing = sh("bash", script, "device", "--missing").split()
    if not missing:
        run.report("packages", "unchanged", "all system packages installed")
        return
    run.act("packages", "apt install " + " ".join(missing), lambda: sh("bash", script, "device"))


def step_user(run: Run) -> None:
    """The service user and its groups (sysusers.d), the state and config directories (tmpfiles.d)."""
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
    if not STATE.is_dir() or not CONFIG.is_dir():
        todo.append(f"{STATE}, {CONFIG}")
    if not todo:
        run.report("user", "unchanged", f"user {SERVICE_USER}, groups video gpio render, {STATE}, {CONFIG}")
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
    wheels = run.bundle / "wheels"
    want = (run.bundle / "wheelhouse.sha256").read_text().strip()
    have = STAMP.read_text().strip() if STAMP.exists() else ""
    if KGATE.exists() and have == want:
        run.report("venv", "unchanged", f"{VENV} has kgate from wheelhouse {want[:12]}")
        return
    kgate_wheel = str(next(wheels.glob("kgate-*.whl")))

    def apply() -> None:
        if not (VENV / "bin" / "python").exists():
            sh("python3", "-m", "venv", "--system-site-packages", str(VENV))
        pip = (str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
               "--disable-pip-version-check", "--find-links", str(wheels))  # fmt: skip
        sh(*pip, kgate_wheel)
        sh(*pip, "--force-reinstall", "--no-deps", kgate_wheel)  # same version number, new code
        STAMP.write_text(want + "\n")

    run.act("venv", f"install kgate into {VENV} from wheelhouse {want[:12]}", apply)


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


def enrolment() -> dict[str, Any] | None:
    path = STATE / "enrolment.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def step_enrol(run: Run) -> None:
    """Enrol ON the device as the service user: the key is made here and never leaves."""
    register = run.settings["register"].rstrip("/")
    known = enrolment()
    if known is not None and known.get("register_url", "").rstrip("/") == register:
        run.report("enrol", "unchanged", f"enrolled as {known['origin']}")
        return
    if run.dry_run:
        run.report("enrol", "would change", f"enrol with the register at {register}")
        return
    if not run.settings.get("token"):
        raise StepFailed("not enrolled yet: pass --token (kgate register token create)")
    ca = run.settings.get("ca_pem")
    ca_path = CONFIG / "register-ca.pem"
    if ca:
        ca_path.write_text(ca)
    body = {"register": register, "token": run.settings["token"], "state": str(STATE),
            "ca": str(ca_path) if ca else None}  # fmt: skip
    proc = subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", str(VENV / "bin" / "python"), "-c", ENROL_SCRIPT],
        input=json.dumps(body), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        raise StepFailed(f"enrolment refused, nothing stored: {lines[-1]}")
    ident = json.loads(proc.stdout)
    run.changed.add("enrol")
    run.report(
        "enrol", "changed", f"enrolled as {ident['origin']} ({ident['kindergarten']} / {ident['gate']})"
    )


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def config_texts(run: Run, ident: dict[str, Any]) -> dict[str, str]:
    """``terminal.toml`` (the bundle's, with the enrolled origin) and ``sync.toml`` (from the enrolment)."""
    terminal = (run.bundle / "terminal.toml").read_text(encoding="utf-8")
    terminal = terminal.replace("@ORIGIN@", _toml(ident["origin"]))
    sync = [
        "# written by kgate provision from the enrolment (/var/lib/kgate/enrolment.json)",
        f'ledger = "{STATE}/ledger.db"',
        f'state = "{STATE}/sync"',
        f'key = "{STATE}/device.key"',
        f"register = {_toml(ident['register_url'])}",
        f"register_vkey = {_toml(ident['register_vkey'])}",
    ]
    if run.settings.get("ca_pem"):
        sync.append(f'ca = "{CONFIG}/register-ca.pem"')
    return {"terminal.toml": terminal, "sync.toml": "\n".join(sync) + "\n"}


def _differs(bundle: Path, name: str, text: str) -> bool:
    """Whether ``/etc/kgate/NAME`` differs from ``text`` (or, for camera images, from the bundle's copy)."""
    dest = CONFIG / name
    if not dest.exists():
        return True
    if name.startswith("camera/"):
        return dest.read_bytes() != (bundle / name).read_bytes()
    return dest.read_text(encoding="utf-8") != text


def step_config(run: Run) -> None:
    ident = enrolment()
    if ident is None:  # only in a dry run: enrolment would come first
        run.report("config", "would change", f"write {CONFIG}/terminal.toml and sync.toml")
        return
    texts = config_texts(run, ident)
    camera = run.bundle / "camera"  # replay images for a gate without a camera (tests, demos)
    if camera.is_dir():
        texts.update({f"camera/{p.name}": "" for p in camera.iterdir()})
    stale = [n for n, t in texts.items() if _differs(run.bundle, n, t)]
    if not stale:
        run.report("config", "unchanged", f"{CONFIG}/terminal.toml, sync.toml")
        return

    def apply() -> None:
        for name in stale:
            src = run.bundle / name
            if not name.startswith("camera/"):
                src = run.bundle / f"{name}.new"
                src.write_text(texts[name], encoding="utf-8")
            install_file(src, CONFIG / name, 0o640, SERVICE_USER)

    run.act("config", "write " + ", ".join(f"{CONFIG}/{n}" for n in stale), apply)


def step_units(run: Run) -> None:
    """Install, enable and start the units; restart them when their code or configuration changed."""
    stale = [u for u in UNITS if not (SYSTEMD / u).exists() or (SYSTEMD / u).read_bytes()
             != (run.bundle / u).read_bytes()]  # fmt: skip
    disabled = [u for u in UNITS if sh("systemctl", "is-enabled", u, check=False).strip() != "enabled"]
    stopped = [u for u in UNITS if sh("systemctl", "is-active", u, check=False).strip() != "active"]
    restart = bool(run.changed & {"venv", "config"}) or bool(stale)
    if not (stale or disabled or stopped or restart):
        run.report("units", "unchanged", "enabled and active: " + ", ".join(UNITS))
        return

    def apply() -> None:
        run.ledger_before = ledger_size()
        for unit in stale:
            install_file(run.bundle / unit, SYSTEMD / unit, 0o644)
        sh("systemctl", "daemon-reload")
        sh("systemctl", "enable", *UNITS)
        sh("systemctl", "restart" if restart else "start", "--no-block", *UNITS)

    run.act("units", f"install {len(stale)}, enable {len(disabled)}, start {len(stopped)}", apply)


def ledger_size() -> int | None:
    """The ledger's entry count from ``kgate verify`` (None: no ledger); fails if it does not verify."""
    ledger = STATE / "ledger.db"
    if not ledger.exists() or not KGATE.exists():
        return None
    out = sh("runuser", "-u", SERVICE_USER, "--", str(KGATE), "verify", "--json", str(ledger), timeout=120)
    return int(json.loads(out)["size"])


def roster_version() -> int | None:
    """The roster version installed in the terminal's database (read-only), or None."""
    path = STATE / "roster.db"
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


def step_selftest(run: Run) -> None:
    """The four checks a technician would make by hand, one line each; changes nothing on the device."""
    if run.dry_run:
        for check in ("camera", "ledger", "register", "roster"):
            run.report(check, "unchanged", "self-test skipped in a dry run")
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

    # The terminal appends its `boot` entry through its own ledger path each time it starts.
    size = ledger_size()
    if size is None:
        run.report("ledger", "warning", f"no ledger yet at {STATE}/ledger.db (the terminal did not start)")
    elif "units" in run.changed and size <= (run.ledger_before or 0):
        run.report("ledger", "warning", f"{size} entries: the restarted terminal appended no boot entry")
    elif "units" in run.changed:
        grew = size - (run.ledger_before or 0)
        run.report(
            "ledger", "unchanged", f"{size} entries, +{grew} appended by the terminal's start, verifies"
        )
    else:
        run.report("ledger", "unchanged", f"{size} entries, verifies (the terminal was not restarted)")

    register = run.settings["register"].rstrip("/")
    try:
        with urllib.request.urlopen(register + "/", timeout=10) as resp:  # noqa: S310 (http(s) only)
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError as exc:
        raise StepFailed(f"the register at {register} is not reachable from the device: {exc}") from None
    run.report("register", "unchanged", f"{register} reachable from the device (HTTP {code})")

    version = roster_version()
    if version is None:
        run.report("roster", "unchanged", "no roster published yet: none delivered to this gate")
    else:
        run.report("roster", "unchanged", f"delivered version {version}")


STEPS: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("os", step_os), ("packages", step_packages), ("user", step_user), ("venv", step_venv),
    ("enrol", step_enrol), ("config", step_config), ("units", step_units), ("selftest", step_selftest),
)  # fmt: skip


# -- decommissioning ---------------------------------------------------------------------------------
ARCHIVE = Path("/var/lib/kgate-decommissioned")
SECRETS = ("device.key", "face.key")  # every private key a gate holds (ledger/keys, terminal/face)


def archived_identity() -> dict[str, Any] | None:
    """The identity of the newest archived state (a decommission that already ran), or None."""
    for path in sorted(ARCHIVE.glob("*/enrolment.json"), reverse=True):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    return None


def step_identify(run: Run) -> None:
    """Which device this is: the origin the register must revoke (also after a finished decommission)."""
    ident = enrolment()
    where = "enrolled"
    if ident is None:
        ident, where = archived_identity(), f"already decommissioned, state in {ARCHIVE}"
    if ident is None:
        raise StepFailed(f"no enrolment on this device ({STATE}/enrolment.json): nothing to decommission")
    run.report("identify", "unchanged", f"{ident['origin']} ({where})", origin=str(ident["origin"]))


def units_present() -> list[str]:
    return [u for u in UNITS if (SYSTEMD / u).exists()]


def step_stop(run: Run) -> None:
    """Stop and disable the units first: no new entries, and no push racing the final sync."""
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
    conf, key = CONFIG / "sync.toml", STATE / "device.key"
    if not key.exists():
        run.report("final-sync", "unchanged", "no device key any more: nothing can be pushed")
        return
    if run.settings.get("skip_sync"):
        run.report("final-sync", "warning", f"skipped (--skip-sync); the ledger is kept in {ARCHIVE}")
        return
    if not (conf.exists() and KGATE.exists()):
        raise StepFailed(f"cannot push: {conf} or {KGATE} is missing (provision again, or --skip-sync)")
    cmd = ("runuser", "-u", SERVICE_USER, "--", str(KGATE), "sync", "once", "--config", str(conf), "--json")
    if run.dry_run:
        run.report("final-sync", "would change", "kgate sync once")
        return
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
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
    keys = [STATE / name for name in SECRETS if (STATE / name).exists()]
    if not keys:
        run.report("keys", "unchanged", "no private key on the device")
        return

    def apply() -> None:
        for key in keys:
            destroy(key)

    run.act("keys", "overwrite and remove " + ", ".join(map(str, keys)), apply)


def step_remove_units(run: Run) -> None:
    present = units_present()
    if not present:
        run.report("units", "unchanged", "no kgate unit installed")
        return

    def apply() -> None:
        for unit in present:
            (SYSTEMD / unit).unlink()
        sh("systemctl", "daemon-reload")
        sh("systemctl", "reset-failed", *UNITS, check=False)

    run.act("units", "remove " + ", ".join(present), apply)


def step_archive(run: Run) -> None:
    """Keep the ledger, sync state and identity (public data) in an archive; STATE is left empty.

    An empty STATE is what lets the same Pi be provisioned again as a new device.
    """
    left = sorted(p.name for p in STATE.iterdir()) if STATE.is_dir() else []
    if not left:
        run.report("archive", "unchanged", f"{STATE} is empty")
        return
    ident = enrolment() or {}
    name = str(ident.get("origin", "unknown")).replace("/", "_") + time.strftime(
        "-%Y%m%dT%H%M%SZ", time.gmtime()
    )
    dest = ARCHIVE / name

    def apply() -> None:
        ARCHIVE.mkdir(mode=0o700, exist_ok=True)
        dest.mkdir(mode=0o700)
        for child in left:
            os.replace(STATE / child, dest / child)

    run.act("archive", f"move {', '.join(left)} to {dest}", apply)


DECOMMISSION: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("identify", step_identify), ("stop", step_stop), ("final-sync", step_final_sync),
    ("keys", step_destroy_keys), ("units", step_remove_units), ("archive", step_archive),
)  # fmt: skip


def main(argv: list[str]) -> int:
    if not argv or os.geteuid() != 0:
        print(
            "usage (as root): python3 device.py BUNDLE_DIR [--dry-run] [--decommission] < settings.json",
            file=sys.stderr,
        )
        return 2
    os.umask(0o022)  # the venv must be readable by the service user whatever the login's umask
    run = Run(Path(argv[0]), json.load(sys.stdin), "--dry-run" in argv[1:])
    for name, step in DECOMMISSION if "--decommission" in argv[1:] else STEPS:
        try:
            step(run)
        except StepFailed as exc:
            run.report(name, "failed", str(exc))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
