"""Fixtures for the provisioning tests: a booted Bookworm target with sshd, and a real register.

``target`` (session scope) copies the cached pristine root (see tests/provisioning/target.py), boots it
with systemd-nspawn and yields once sshd listens on 127.0.0.1:PORT. The tests are skipped, with the
reason, only when this machine cannot run the target at all (not root, no debootstrap/systemd-nspawn);
CI runs as root on Debian 12 and installs both (provisioning/system-packages.sh dev).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.provisioning.target import Target, booted, cached_root, missing_tools

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def technician(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The technician's side: SSH key, known_hosts, logs. Scanned for device secrets by the tests."""
    home = tmp_path_factory.mktemp("technician")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "id_ed25519")],
        check=True,
        timeout=30,
    )
    return home


@pytest.fixture(scope="session")
def target(technician: Path) -> Iterator[Target]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    start = time.monotonic()
    pristine = cached_root()
    TIMINGS["root (cached or built)"] = time.monotonic() - start
    work = Path(tempfile.mkdtemp(prefix="kgate-target-", dir="/var/tmp"))
    root = work / "root"
    start = time.monotonic()
    subprocess.run(["cp", "--reflink=auto", "-a", str(pristine), str(root)], check=True, timeout=300)
    TIMINGS["copy"] = time.monotonic() - start
    try:
        start = time.monotonic()
        with booted(root, free_port(), technician / "id_ed25519", work / "console.log") as t:
            TIMINGS["boot"] = time.monotonic() - start
            yield t
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print("\nprovisioning target timings (s):", {k: round(v, 1) for k, v in TIMINGS.items()})
