"""``kgate provision`` against a real sshd, systemd and register (fixtures: tests/provisioning/conftest.py).

One module-scoped flow, in the order a technician meets it: a wrong token first (refused, nothing
half-installed), then the real first run, a second run and a dry run that change nothing, and last a
changed host key (refused). The device key is looked for everywhere on the technician's side.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno

from tests.conftest import free_port
from tests.provisioning.conftest import TIMINGS
from tests.provisioning.target import Target

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
KGATE = str(ROOT / ".venv" / "bin" / "kgate") if (ROOT / ".venv" / "bin" / "kgate").exists() else "kgate"
UNITS = ("kgate-terminal.service", "kgate-sync.service")


@dataclass
class Register:
    url: str
    db: Path
    state: Path

    def token(self, gate: str = "gate-1") -> str:
        out = kgate("register", "token", "create", "--kindergarten", "K-042", "--gate", gate,
                    "--db", str(self.db), "--state", str(self.state))  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


def kgate(*argv: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KGATE, *argv], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Register]:
    """``kgate register serve`` on loopback; the container shares the host network and reaches it too."""
    home = tmp_path_factory.mktemp("register")
    port = free_port()
    db, state = home / "register.db", home / "state"
    proc = subprocess.Popen(
        [KGATE, "register", "serve", "--db", str(db), "--state", str(state), "--name", "reg.test",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the register did not start"
            time.sleep(0.1)
        yield Register(f"http://127.0.0.1:{port}", db, state)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Flow:
    target: Target
    register: Register
    technician: Path
    args: list[str]
    bad: subprocess.CompletedProcess[str]
    after_bad: dict[str, str]
    first: subprocess.CompletedProcess[str]


def device_state(target: Target) -> dict[str, str]:
    """What a half-finished run could leave: the key, the identity, the config, the units."""
    paths = ("/var/lib/kgate/device.key", "/var/lib/kgate/enrolment.json", "/etc/kgate/sync.toml")
    state = {p: str((target.root / p.lstrip("/")).exists()) for p in paths}
    for unit in UNITS:
        installed = (target.root / "etc" / "systemd" / "system" / unit).exists()
        state[unit] = f"installed={installed} {target.run('systemctl', 'is-active', unit).stdout.strip()}"
    return state


def publish_roster(register: Register, path: Path) -> None:
    """Roster version 1 for K-042 (the tokens' kindergarten), as an operator publishes it."""
    doc = {"version": 1, "kindergarten": "K-042", "guardians": [], "badges": [],
           "children": [{"id": "c-1", "name": "Аружан", "group": "Күн", "consent_face": False}]}  # fmt: skip
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    out = kgate(
        "register", "tuf", "publish", "--kindergarten", "K-042", "--state", str(register.state), str(path)
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def flow(target: Target, register: Register, technician: Path) -> Flow:
    known_hosts = technician / "known_hosts"
    known_hosts.write_text(target.known_hosts_line())
    image = technician / "badge.png"
    segno.make("KG1-TEST", error="m").save(str(image), scale=8)
    args = ["provision", target.host, "--port", str(target.port), "--identity", str(target.identity),
            "--known-hosts", str(known_hosts), "--register", register.url,
            "--display", "null", "--no-feedback",  # a container: no screen, no GPIO
            "--camera", f"replay:{image}"]  # fmt: skip
    (technician / "bad-token").write_text("kgt1-" + "A" * 27 + "\n")  # a file: never in ps or history
    bad = kgate(*args, "--token-file", str(technician / "bad-token"))
    after_bad = device_state(target)
    publish_roster(register, technician / "roster.json")  # enrolment hands the gate the roster's root
    start = time.monotonic()
    first = kgate(*args, "--token", "-", stdin=register.token() + "\n")
    TIMINGS["first provision"] = time.monotonic() - start
    return Flow(target, register, technician, args, bad, after_bad, first)


def test_wrong_token_is_refused_and_nothing_is_half_installed(flow: Flow) -> None:
    assert flow.bad.returncode == 1
    assert "step enrol failed" in flow.bad.stderr and "unknown enrolment token" in flow.bad.stderr
    assert flow.after_bad == {
        "/var/lib/kgate/device.key": "False",
        "/var/lib/kgate/enrolment.json": "False",
        "/etc/kgate/sync.toml": "False",
        **{unit: "installed=False inactive" for unit in UNITS},
    }


def test_first_run_provisions_enrols_and_starts_the_units(flow: Flow) -> None:
    assert flow.first.returncode == 0, flow.first.stdout + flow.first.stderr
    lines = {line.split()[0]: line.split()[1] for line in flow.first.stdout.splitlines()[:-1]}
    # the venv came with the refused run before; enrolment, config and units only now
    assert (lines["enrol"], lines["config"], lines["units"]) == ("changed", "changed", "changed")
    # the self-test, one line per check: camera frame, ledger append (the terminal's boot entry) and
    # verify, the register reachable, the roster (published before: delivered by the agent's first update)
    report = {
        line.split(None, 2)[0]: " ".join(line.split()[1:]) for line in flow.first.stdout.splitlines()[:-1]
    }
    assert report["camera"] == "unchanged the terminal is running: the camera delivered a frame", report
    assert re.fullmatch(
        r"unchanged \d+ entries, \+[1-9]\d* appended by the terminal's start, verifies", report["ledger"]
    )
    assert report["register"].startswith(f"unchanged {flow.register.url} reachable from the device (HTTP ")
    assert report["roster"] == "unchanged delivered version 1", report
    listed = kgate("register", "device", "list", "--db", str(flow.register.db), "--json")
    assert "K-042" in listed.stdout and "gate-1" in listed.stdout
    for unit in UNITS:
        assert flow.target.run("systemctl", "is-active", unit).stdout.strip() == "active", unit
    user = flow.target.run("id", "-nG", "kgate").stdout.split()
    assert {"video", "gpio", "render"} <= set(user)


def test_the_terminal_unit_runs_every_native_library_under_memory_deny_write_execute(flow: Flow) -> None:
    """A oneshot copy of kgate-terminal.service (same hardening) runs tests/provisioning/mdwe_check.py.

    (In /etc/systemd/system: the container's /run is a tmpfs the host side does not see.)
    """
    unit = (ROOT / "systemd" / UNITS[0]).read_text()
    assert "\nMemoryDenyWriteExecute=yes\n" in unit
    drop = (
        "Type=",
        "NotifyAccess=",
        "WatchdogSec=",
        "Restart",
        "TimeoutStartSec=",
        "ExecStart=",
        "WantedBy=",
    )
    lines = [line for line in unit.splitlines() if not line.startswith(drop)]
    script = "/usr/local/lib/kgate-mdwe-check.py"
    at = lines.index("[Service]") + 1
    lines[at:at] = ["Type=oneshot", f"ExecStart=/opt/kgate/venv/bin/python {script}"]
    root = flow.target.root
    (root / script.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / script.lstrip("/")).write_text((Path(__file__).parent / "mdwe_check.py").read_text())
    (root / "etc" / "systemd" / "system").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "systemd" / "system" / "kgate-mdwe-check.service").write_text("\n".join(lines) + "\n")
    out = root / "var" / "lib" / "kgate" / "mdwe-check.json"
    try:
        flow.target.run("systemctl", "daemon-reload")
        started = flow.target.run("systemctl", "start", "kgate-mdwe-check.service", timeout=300)
        log = flow.target.run("journalctl", "-u", "kgate-mdwe-check", "-o", "cat", "--no-pager").stdout
        assert started.returncode == 0, started.stderr + log[-3000:]
        result = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
        (root / "etc" / "systemd" / "system" / "kgate-mdwe-check.service").unlink()
        flow.target.run("systemctl", "daemon-reload")
    assert result == {"wx_mapping_refused": True, "opencv": True, "zxing": ["KG1-MDWE"],
                      "pyzbar": ["KG1-MDWE"], "dlib_hog": 0, "dlib_descriptor": 128}  # fmt: skip
    # and the provisioned terminal itself runs with the setting (active, so its libraries loaded)
    shown = flow.target.run("systemctl", "show", "-p", "MemoryDenyWriteExecute,ActiveState", UNITS[0]).stdout
    assert "MemoryDenyWriteExecute=yes" in shown and "ActiveState=active" in shown, shown


def test_second_run_and_dry_run_change_nothing(flow: Flow) -> None:
    start = time.monotonic()
    second = kgate(*flow.args)
    TIMINGS["second provision"] = time.monotonic() - start
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1].endswith(": 0 changed, 12 unchanged"), second.stdout
    dry = kgate(*flow.args, "--dry-run")
    assert dry.returncode == 0 and "would change" not in dry.stdout, dry.stdout


def test_dry_run_says_what_would_change_and_changes_nothing(flow: Flow) -> None:
    conf = flow.target.root / "etc" / "kgate" / "terminal.toml"
    original = conf.read_text()
    conf.write_text(original + "# edited by hand\n")
    dry = kgate(*flow.args, "--dry-run")
    assert dry.returncode == 0 and "config    would change write /etc/kgate/terminal.toml" in dry.stdout
    assert conf.read_text().endswith("# edited by hand\n")
    again = kgate(*flow.args)
    assert "config    changed" in again.stdout and conf.read_text() == original


def test_the_device_key_never_reaches_the_technician(flow: Flow) -> None:
    skey = (flow.target.root / "var" / "lib" / "kgate" / "device.key").read_text().strip()
    secret = skey.split("+", 4)[4]  # PRIVATE+KEY+name+hash+base64: the base64 may itself hold a "+"
    seed = base64.b64decode(secret)[1:]  # after the algorithm byte
    assert len(seed) == 32, "not an Ed25519 note key"
    needles = [secret.encode(), seed]
    transcript = "".join(p.stdout + p.stderr for p in (flow.bad, flow.first))
    assert secret not in transcript
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kgate"
    for base in (flow.technician, flow.register.db.parent, home):
        for path in base.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n in data for n in needles), path


def test_decommission_syncs_destroys_the_keys_removes_the_units_and_revokes(
    flow: Flow, tmp_path: Path
) -> None:
    root, reg = flow.target.root, flow.register
    saved_key = (root / "var" / "lib" / "kgate" / "device.key").read_text()  # to try a push afterwards
    args = ["decommission", *flow.args[1:8], "--db", str(reg.db)]  # host, port, identity, known-hosts
    dry = kgate(*args, "--dry-run")
    assert dry.returncode == 0 and "would change" in dry.stdout, dry.stdout + dry.stderr
    assert (root / "var" / "lib" / "kgate" / "device.key").exists()
    assert flow.target.run("systemctl", "is-active", UNITS[0]).stdout.strip() == "active"

    start = time.monotonic()
    first = kgate(*args)
    TIMINGS["decommission"] = time.monotonic() - start
    assert first.returncode == 0, first.stdout + first.stderr
    status = {line.split()[0]: line.split()[1] for line in first.stdout.splitlines()[:-1]}
    want = {
        "identify": "unchanged",
        **dict.fromkeys(("stop", "final-sync", "keys", "units", "archive"), "changed"),
    }
    assert status == {**want, "revoke": "changed"}, first.stdout
    for name in ("device.key", "face.key"):
        assert not (root / "var" / "lib" / "kgate" / name).exists()
        assert not list((root / "var" / "lib" / "kgate-decommissioned").rglob(name))
    for unit in UNITS:
        assert not (root / "etc" / "systemd" / "system" / unit).exists()
        assert flow.target.run("systemctl", "is-active", unit).stdout.strip() == "inactive"
    revs = kgate("register", "device", "revocations", "--db", str(reg.db))
    rows = [json.loads(line) for line in revs.stdout.splitlines()]
    [archived] = (root / "var" / "lib" / "kgate-decommissioned").glob("*/enrolment.json")
    ident = json.loads(archived.read_text())
    assert [(r["origin"], r["reason"]) for r in rows] == [(ident["origin"], "decommissioned")]
    # the ledger is archived and still verifies; a push with the (saved) old key is refused with 403
    ledger = archived.parent / "ledger.db"
    assert kgate("verify", str(ledger)).returncode == 0
    home = tmp_path  # not the technician's side, which test_the_device_key_never_reaches_the_technician scans
    (home / "device.key").write_text(saved_key)
    (home / "device.key").chmod(0o600)
    (home / "sync.toml").write_text(
        f'ledger = "{ledger}"\nstate = "{home / "sync"}"\nkey = "{home / "device.key"}"\n'
        f'register = "{reg.url}"\nregister_vkey = "{ident["register_vkey"]}"\n'
    )
    push = kgate("sync", "once", "--config", str(home / "sync.toml"))
    assert push.returncode != 0 and "403" in push.stderr, push.stderr

    again = kgate(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1].endswith(": 0 changed, 7 unchanged"), again.stdout


def test_the_ansible_role_reprovisions_to_the_state_kgate_provision_makes(flow: Flow, tmp_path: Path) -> None:
    """After the decommission the playbook enrols the Pi again; ``kgate provision`` then changes nothing."""
    bundle = tmp_path / "bundle"
    built = kgate("provision-bundle", str(bundle), "--camera", flow.args[-1])
    assert built.returncode == 0, built.stderr
    known_hosts = flow.technician / "known_hosts"
    (tmp_path / "inventory.yml").write_text(
        "gates:\n  hosts:\n    gate-1:\n"
        f"      ansible_host: 127.0.0.1\n      ansible_port: {flow.target.port}\n      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {flow.target.identity}\n"
        f"      ansible_ssh_common_args: -o UserKnownHostsFile={known_hosts}"
        " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes\n"
        "      ansible_python_interpreter: /usr/bin/python3\n"
        f"      kgate_register: {flow.register.url}\n      kgate_bundle: {bundle}\n"
        '      kgate_display: "null"\n      kgate_feedback: false\n'  # as flow.args: no screen, no GPIO
        "      kgate_token: \"{{ lookup('ansible.builtin.env', 'KGATE_TEST_TOKEN') }}\"\n"
    )
    token = flow.register.token()
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "KGATE_TEST_TOKEN": token}  # fmt: skip
    playbook = str(ROOT / ".venv" / "bin" / "ansible-playbook")
    start = time.monotonic()
    run = subprocess.run(
        [playbook, "-i", str(tmp_path / "inventory.yml"), str(ROOT / "provisioning/ansible/site.yml")],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    TIMINGS["ansible run"] = time.monotonic() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert '\\"step\\": \\"enrol\\", \\"status\\": \\"changed\\"' in run.stdout, run.stdout[-3000:]
    assert "failed=0" in run.stdout and "changed=1" in run.stdout
    for unit in UNITS:
        assert flow.target.run("systemctl", "is-active", unit).stdout.strip() == "active", unit
    after = kgate(*flow.args)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.splitlines()[-1].endswith(": 0 changed, 12 unchanged"), after.stdout


def test_a_changed_host_key_is_refused(flow: Flow) -> None:
    flow.target.new_host_key()
    changed = kgate(*flow.args)
    assert changed.returncode == 75
    assert "host key" in changed.stderr and "refusing to connect" in changed.stderr
