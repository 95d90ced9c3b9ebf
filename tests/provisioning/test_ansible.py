"""The fleet playbook (provisioning/ansible) parses, and its role runs nothing but provisioning/device.py.

The real run against the nspawn target is in test_provision.py (it needs the provisioned, then
decommissioned gate of that module's flow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
