"""``kgate provision``: copy the bundle to a device over SSH, run the on-device steps, report each one.

The steps themselves live in :mod:`provisioning.device` (run ON the device, also by the Ansible role);
this module only builds the bundle, moves it, feeds the settings (token included) on stdin, parses the
JSON lines that come back and removes the bundle from the device again, whatever happened. The
transport is the system's OpenSSH (:class:`~provisioning.ssh.Ssh`), or a directory root on this
machine (:class:`~provisioning.local.LocalRoot`, the demo's simulated gate).
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kgate.errors import UsageError
from kgate.text import REFUSED_CATEGORIES
from kgate.urls import check_url
from provisioning import bundle, device
from provisioning.errors import StepError

RUN_TIMEOUT_S = 1800  # apt + pip on a Pi's SD card


class Transport(Protocol):
    """How commands and the bundle reach the device: :class:`~provisioning.ssh.Ssh` or a local root."""

    @property
    def host(self) -> str: ...

    @property
    def python(self) -> str: ...  # the shell word that runs device.py there

    as_root: bool  # device.py runs as root (through ``sudo -n`` when the login is not root)
    wheels: bool  # the device installs kgate from the bundle's wheelhouse

    def device_flags(self) -> list[str]: ...

    def run(
        self, command: str, *, stdin: str | None = None, timeout: float = 60, ok: Sequence[int] = (0,)
    ) -> tuple[int, str]: ...

    def copy(self, local: Path, remote: str, *, timeout: float = 600) -> None: ...


@dataclass(frozen=True)
class StepResult:
    """One line of the device's report."""

    step: str
    status: str
    detail: str
    vkey: str = ""  # only the decommission's ``identify`` step: the device key's public half
    signature: str = ""  # ... and its signature over the technician's challenge (base64)


def shown(text: str) -> str:
    """Device output as it may reach a technician's terminal: every control, format or other invisible
    character (ESC, BEL, bidi overrides, ...; :data:`kgate.text.REFUSED_CATEGORIES`) escaped as ``\\xNN``
    or ``\\uNNNN``, so a device cannot move the cursor, retitle the window or hide text."""
    out = []
    for char in text:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            code = ord(char)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return "".join(out)


def device_facts(ssh: Transport) -> tuple[bundle.DeviceFacts, bool]:
    """The device's CPU and Python, and whether we log in as root (else ``sudo -n``)."""
    probe = f"uname -m; id -u; {ssh.python} -c 'import sys; print(*sys.version_info[:2])' || echo none"
    _, out = ssh.run(probe, timeout=60)
    lines = out.split("\n")
    version = lines[2].split() if len(lines) > 2 else []
    if len(version) != 2 or not all(v.isascii() and v.isdigit() and len(v) < 4 for v in version):
        raise StepError("step os: the device has no python3 (Raspberry Pi OS and Debian bookworm have it)")
    arch = lines[0].strip()
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", arch):  # it names wheel tags and cache directories here
        raise StepError(f"step os: the device reports the CPU architecture '{shown(arch[:40])}'")
    return bundle.DeviceFacts(arch, (int(version[0]), int(version[1]))), lines[1].strip() == "0"


#: ``terminal.toml`` key → the ``kgate provision`` option that sets it, for the option's error message.
GATE_OPTIONS = {
    "display.backend": "--display", "screen.width": "--panel", "screen.height": "--panel",
    "gate.language": "--language", "screen.lang": "--language", "gate.pickup": "--pickup",
    "gate.mode": "--face-mode", **{f"feedback.{p}": "--" + p.replace("_", "-") for p in device.PINS},
}  # fmt: skip


def check_gate(gate: dict[str, Any]) -> dict[str, Any]:
    """The gate's settings (:data:`provisioning.device.GATE_DEFAULTS`' keys) over the defaults, checked
    by the terminal's own config reader; :class:`~kgate.errors.UsageError` naming the option otherwise."""
    from terminal.config import ConfigError, parse_config  # noqa: PLC0415

    try:
        merged = device.gate_settings({"gate": gate})
        text = device.gate_toml(merged)
        parse_config(tomllib.loads(text), base=Path("/"), state=Path("/var/lib/kgate"))
    except device.StepFailed as exc:
        raise UsageError(str(exc)) from None
    except ConfigError as exc:
        message = str(exc)
        for key, option in GATE_OPTIONS.items():
            message = re.sub(rf"\b{re.escape(key)}\b", option, message)
        raise UsageError(message) from None
    return merged


def provision(
    ssh: Transport,
    *,
    register: str,
    token: str | None,
    dry_run: bool = False,
    wheel: Path | None = None,
    camera: str = "picamera2",
    ca: Path | None = None,
    gate: dict[str, Any] | None = None,
    on_step: Callable[[StepResult], None] = lambda r: None,
) -> list[StepResult]:
    """Provision the device behind ``ssh``; raises :class:`StepError` naming the step that failed.

    ``gate``: the gate's display, panel, language, pickup, face mode and feedback pins (keys of
    :data:`provisioning.device.GATE_DEFAULTS`; missing ones take the Raspberry Pi defaults), checked
    here before anything connects."""
    register = check_url(register, "--register")
    settings: dict[str, Any] = {"register": register, "token": token, "gate": check_gate(gate or {})}
    if ca is not None:
        settings["ca_pem"] = ca.read_text(encoding="utf-8")
    flags = ["--dry-run"] if dry_run else []

    def make(dest: Path, facts: bundle.DeviceFacts) -> None:
        bundle.build(dest, facts, wheel=wheel, camera=camera, wheels=ssh.wheels)

    return run_on_device(ssh, settings, flags, on_step, make)


def run_on_device(
    ssh: Transport,
    settings: dict[str, Any],
    flags: list[str],
    on_step: Callable[[StepResult], None],
    make_bundle: Callable[[Path, bundle.DeviceFacts], None],
) -> list[StepResult]:
    """Copy a bundle to a ``mktemp`` directory, run ``device.py BUNDLE FLAGS`` with ``settings`` on stdin,
    remove the bundle again whatever happened, and return the parsed step lines."""
    facts, is_root = device_facts(ssh)
    with tempfile.TemporaryDirectory(prefix="kgate-bundle-") as tmp:
        local = Path(tmp) / "bundle"
        make_bundle(local, facts)
        _, out = ssh.run("mktemp -d /tmp/kgate-provision.XXXXXXXX", timeout=30)
        remote = out.strip()
        sudo = "" if is_root or not ssh.as_root else "sudo -n "
        try:
            if sudo:  # the bundle is copied as the login user, then read by root
                ssh.run(f"chmod 0700 {shlex.quote(remote)}", timeout=30)
            ssh.copy(local, remote)
            device_py = f"{sudo}{ssh.python} {remote}/bundle/device.py {remote}/bundle"
            command = " ".join([device_py, *ssh.device_flags(), *flags])
            status, out = ssh.run(command, stdin=json.dumps(settings), timeout=RUN_TIMEOUT_S, ok=(0, 1))
        finally:
            ssh.run(f"{sudo}rm -rf {shlex.quote(remote)}", timeout=60, ok=(0, 1))
    results = []
    for line in out.splitlines():
        try:
            row = json.loads(line)
            result = StepResult(
                *(shown(str(row[k])) for k in ("step", "status", "detail")),
                *(shown(str(row.get(k, ""))) for k in ("vkey", "signature")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not one of ours (a motd, a shell's noise)
        results.append(result)
        on_step(result)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise StepError(f"step {failed[0].step} failed: {failed[0].detail} (fix it and run again)")
    if status != 0 or not results:
        raise StepError(f"the device's step runner ended without a report (exit status {status})")
    return results


def summary(results: list[StepResult]) -> str:
    """``3 changed, 5 unchanged`` (and ``would change`` / ``warning`` counts when there are any)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    order = ("changed", "would change", "unchanged", "skipped", "warning")
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in order if k in counts or k in ("changed", "unchanged"))
