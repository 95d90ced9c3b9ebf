"""The fleet playbook (provisioning/ansible) parses, and its role runs nothing but provisioning/device.py.

The real run against the nspawn target is in test_provision.py (it needs the provisioned, then
decommissioned gate of that module's flow).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.device import GATE_DEFAULTS
from provisioning.provision import check_gate

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "provisioning" / "ansible"
BIN = ROOT / ".venv" / "bin"


def ansible_playbook() -> str:
    found = BIN / "ansible-playbook"
    if found.exists():
        return str(found)
    path = shutil.which("ansible-playbook")
    if path is None:
        pytest.fail("ansible-playbook is missing: pip install -e '.[dev]' (ansible-core)")
    return path


def test_the_playbook_and_example_inventory_pass_the_syntax_check(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path), "ANSIBLE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [ansible_playbook(), "--syntax-check", "-i", str(ANSIBLE / "inventory" / "example.yml"),
         str(ANSIBLE / "site.yml")],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = subprocess.run(
        [ansible_playbook(), "--list-hosts", "-i", str(ANSIBLE / "inventory" / "example.yml"),
         str(ANSIBLE / "site.yml")],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert listed.returncode == 0 and "k042-gate1.almaty.example.kz" in listed.stdout, listed.stderr


def test_the_role_copies_the_bundle_and_runs_device_py_only() -> None:
    tasks = (ANSIBLE / "roles" / "kgate_gate" / "tasks" / "main.yml").read_text()
    modules = {line.strip().rstrip(":") for line in tasks.splitlines() if line.strip().startswith("ansible.")}
    assert modules == {
        "ansible.builtin.assert", "ansible.builtin.tempfile", "ansible.builtin.copy",
        "ansible.builtin.command", "ansible.builtin.debug", "ansible.builtin.file",
    }  # fmt: skip
    assert "/bundle/device.py" in tasks and "no_log: true" in tasks


def test_no_token_is_committed_in_clear() -> None:
    for path in ANSIBLE.rglob("*.yml"):
        text = path.read_text()
        assert "kgt1-" not in text, path
        for line in text.splitlines():
            if line.strip().startswith("kgate_token:") and "roles" not in path.parts:
                assert "lookup(" in line or "!vault" in line, (path, line)


def test_provision_bundle_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    kgate = str(BIN / "kgate")
    bad = subprocess.run([kgate, "provision-bundle", str(tmp_path / "b"), "--platform", "aarch64"],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith(
        "kgate: error: --platform 'aarch64': expected ARCH-X.Y"
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    taken = subprocess.run([kgate, "provision-bundle", str(tmp_path / "mine")],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert taken.returncode == 2 and "is not a kgate bundle" in taken.stderr
    assert len(taken.stderr.splitlines()) == 1 and (tmp_path / "mine" / "notes.txt").exists()


def role_gate_settings(tmp_path: Path, *extra: str) -> dict[str, object]:
    """``kgate_gate_settings`` as the role's defaults (and ``-e`` overrides) make it, through Ansible."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "gate.json"
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        f"  vars_files: [{ANSIBLE / 'roles' / 'kgate_gate' / 'defaults' / 'main.yml'}]\n"
        "  tasks:\n    - ansible.builtin.copy:\n"
        f'        dest: {out}\n        content: "{{{{ kgate_gate_settings | to_json }}}}"\n'
    )
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t"), "ANSIBLE_HOME": str(tmp_path)}
    here = f"ansible_python_interpreter={sys.executable}"  # the copy module runs in this Python
    proc = subprocess.run([ansible_playbook(), "-i", "localhost,", "-e", here, str(play), *extra],
                          capture_output=True, text=True, timeout=120, check=False, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    settings: dict[str, object] = json.loads(out.read_text())
    return settings


def test_the_roles_gate_defaults_are_kgate_provisions(tmp_path: Path) -> None:
    """The role passes device.py the same gate settings, with the same Raspberry Pi defaults, as the CLI."""
    assert role_gate_settings(tmp_path / "a") == GATE_DEFAULTS
    tasks = (ANSIBLE / "roles" / "kgate_gate" / "tasks" / "main.yml").read_text()
    assert "'gate': kgate_gate_settings" in tasks
    # -e gives strings: numbers and switches are converted, and the result passes the terminal's check.
    changed = role_gate_settings(
        tmp_path / "b", "-e", "kgate_green_pin=18", "-e", "kgate_relay_pin=24",
        "-e", "kgate_panel=[1024,600]",
        "-e", "kgate_in_button_pin=7", "-e", "kgate_feedback=false", "-e", "kgate_language=ru",
    )  # fmt: skip
    assert changed == {**GATE_DEFAULTS, "green_pin": 18, "relay_pin": 24, "panel": [1024, 600],
                       "in_button_pin": 7, "feedback": False, "language": "ru"}  # fmt: skip
    assert check_gate(changed) == changed
    assert role_gate_settings(tmp_path / "c", "-e", "kgate_panel=1280x720")["panel"] == [1280, 720]
