"""Unit files are code: ``systemd-analyze verify`` prints nothing, and the exposure stays low.

``systemd-analyze security --offline=true`` scores how much a unit could do if compromised (0 is
locked down, 10 is unconfined). Thresholds, documented in docs/terminal.md: the terminal ≤ 1.5 (it
has no network at all), the sync agent, the register and its notification dispatcher ≤ 2.0 (they
need IPv4/IPv6).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kgate.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
INSTALLED_KGATE = "/opt/kgate/venv/bin/kgate"
MAX_EXPOSURE = {
    "kgate-terminal.service": 1.5,
    "kgate-sync.service": 2.0,
    "kgate-register.service": 2.0,
    "kgate-notify.service": 2.0,
}
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt install systemd)"
)


def directives(unit: Path) -> list[tuple[str, str]]:
    """``(key, value)`` for every setting line, in order (keys may repeat)."""
    out = []
    for line in unit.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def staged(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this checkout's kgate (verify checks the binary exists)."""
    kgate = shutil.which("kgate") or str(ROOT / ".venv" / "bin" / "kgate")
    if not Path(kgate).exists():
        pytest.skip("the kgate console script is not installed in this environment")
    text = (UNITS / name).read_text(encoding="utf-8").replace(INSTALLED_KGATE, kgate)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@needs_analyze
@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_verify_prints_nothing(tmp_path: Path, name: str) -> None:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(staged(tmp_path, name))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@needs_analyze
@pytest.mark.parametrize(("name", "limit"), sorted(MAX_EXPOSURE.items()))
def test_security_exposure_is_low(tmp_path: Path, name: str, limit: float) -> None:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(staged(tmp_path, name))],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next(ln for ln in proc.stdout.splitlines() if "Overall exposure level" in ln)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= limit, proc.stdout


@pytest.mark.parametrize("name", ["kgate-terminal.service", "kgate-sync.service"])
def test_daemons_talk_to_systemd(name: str) -> None:
    settings = dict(directives(UNITS / name))
    assert settings["Type"] == "notify" and settings["WatchdogSec"] and settings["Restart"] == "always"
    assert settings["User"] == "kgate" and settings["StateDirectory"] == "kgate"
    assert settings["ConfigurationDirectory"] == "kgate" and settings["CapabilityBoundingSet"] == ""
    # the command line in the unit is one our CLI accepts
    argv = shlex.split(settings["ExecStart"])
    assert argv[0] == INSTALLED_KGATE
    build_parser().parse_args(argv[1:])


def test_notify_unit_runs_a_command_our_cli_accepts() -> None:
    settings = dict(directives(UNITS / "kgate-notify.service"))
    assert settings["Type"] == "notify" and settings["WatchdogSec"] and settings["Restart"] == "always"
    argv = shlex.split(settings["ExecStart"])
    assert argv[0] == INSTALLED_KGATE
    build_parser().parse_args(argv[1:])


def test_terminal_has_no_network_and_only_its_devices() -> None:
    settings = directives(UNITS / "kgate-terminal.service")
    values = dict(settings)
    assert values["RestrictAddressFamilies"] == "AF_UNIX" and values["PrivateNetwork"] == "yes"
    assert values["DevicePolicy"] == "closed" and values["ProtectSystem"] == "strict"
    allowed = {v.split()[0] for k, v in settings if k == "DeviceAllow"}
    assert {"char-video4linux", "char-gpiochip", "char-fb", "char-drm"} <= allowed
    assert set(values["SupplementaryGroups"].split()) == {"video", "gpio", "render"}
    # ProtectClock= would also forbid reading adjtimex(2), and every entry would say "clock not synced"
    assert "ProtectClock" not in values and ("SystemCallFilter", "adjtimex") in settings


def test_sysusers_and_tmpfiles_name_the_service_user() -> None:
    sysusers = (UNITS / "sysusers.d" / "kgate.conf").read_text(encoding="utf-8")
    assert any(line.split()[:2] == ["u", "kgate"] for line in sysusers.splitlines() if line.strip())
    tmpfiles = (UNITS / "tmpfiles.d" / "kgate.conf").read_text(encoding="utf-8").splitlines()
    rows = [line.split() for line in tmpfiles if line.strip() and not line.startswith("#")]
    assert ["d", "/var/lib/kgate", "0700", "kgate", "kgate", "-"] in rows
