"""The provisioning test target: a debootstrapped Debian Bookworm root booted with systemd-nspawn.

The pristine root is built once per machine (``debootstrap`` takes about five minutes) and cached in
``$KGATE_TEST_CACHE`` (default ``/var/cache/kgate-test``) under a version stamp, behind a file lock so
parallel pytest-xdist workers never build it twice. Every test session boots its own copy, so runs never
see each other's state. The container shares the host's network, so its sshd listens on 127.0.0.1 on a
port of its own, with a fresh host key and a root ``authorized_keys`` for a key the test made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What debootstrap installs: a booting systemd with sshd, plus the packages `kgate provision` would
# install on a gate anyway (it still checks and installs them itself; here they only save time).
INCLUDE = (
    "systemd,systemd-sysv,dbus,openssh-server,python3,python3-venv,python3-pip,fonts-dejavu-core,libzbar0"
)
BUILD_VERSION = "1"
CACHE = Path(os.environ.get("KGATE_TEST_CACHE", "/var/cache/kgate-test"))
BUILD_TIMEOUT_S = 900
BOOT_TIMEOUT_S = 90


def stamp() -> str:
    """The cache key: changes whenever what goes into the root changes."""
    digest = hashlib.sha256(f"{SUITE} {MIRROR} {INCLUDE} {BUILD_VERSION}".encode()).hexdigest()[:12]
    return f"{SUITE}-{digest}"


def missing_tools() -> str | None:
    """Why the target cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the nspawn test target needs root (debootstrap, systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (provisioning/system-packages.sh dev installs it)"
    return None


def cached_root() -> Path:
    """The pristine root, built once per machine under a lock (parallel workers wait for the first)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / stamp()
    done = root / ".kgate-test-complete"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f"{stamp()}.tmp-", dir=CACHE))
        try:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(tmp), MIRROR],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=BUILD_TIMEOUT_S,
            )
            # apt's caches only make every copy bigger
            subprocess.run(["chroot", str(tmp), "apt-get", "clean"], check=True, timeout=60)
            for key in (tmp / "etc" / "ssh").glob("ssh_host_*"):
                key.unlink()  # every copy gets its own host key
            (tmp / "etc" / "machine-id").write_text("")
            (tmp / ".kgate-test-complete").write_text(stamp() + "\n")
            shutil.rmtree(root, ignore_errors=True)
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


@dataclass
class Target:
    """A booted container: its root, the sshd port, the client key and the init PID (for nsenter)."""

    root: Path
    port: int
    identity: Path
    host_key_pub: str
    pid: int

    @property
    def host(self) -> str:
        return "root@127.0.0.1"

    def known_hosts_line(self) -> str:
        """What a technician's known_hosts holds for this target (host key pinned, port included)."""
        return f"[127.0.0.1]:{self.port} {self.host_key_pub}\n"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all namespaces of its init), not over SSH."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def new_host_key(self) -> None:
        """Replace sshd's host key (a reinstalled or impostor machine) and restart sshd."""
        for key in (self.root / "etc" / "ssh").glob("ssh_host_*"):
            key.unlink()
        self.host_key_pub = _host_key(self.root)
        self.run("systemctl", "restart", "ssh.service")
        _wait_port(self.port, 30)


def _host_key(root: Path) -> str:
    key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"sshd in the test target did not listen on 127.0.0.1:{port}")


def prepare(root: Path, port: int, client_pub: str) -> str:
    """Configure sshd in an unbooted copy: loopback-only on ``port``, key login for root; its host key."""
    root.chmod(0o755)  # "/" of the container (a mkdtemp's copy is 0700: no service user could run)
    conf = root / "etc" / "ssh" / "sshd_config.d" / "kgate-test.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
    )
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(client_pub)
    (ssh_dir / "authorized_keys").chmod(0o600)
    return _host_key(root)


def _init_pid(nspawn_pid: int, timeout: float) -> int:
    """The container's PID 1 as the host sees it: the child of systemd-nspawn once it runs systemd."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
        time.sleep(0.1)
    raise TimeoutError("systemd-nspawn did not start the container's init")


@contextlib.contextmanager
def booted(root: Path, port: int, identity: Path, log: Path) -> Iterator[Target]:
    """Boot ``root`` (a private copy) with systemd-nspawn and yield once sshd listens; power off after."""
    host_key = prepare(root, port, identity.with_suffix(".pub").read_text())
    Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
    machine = f"kgate-test-{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["systemd-nspawn", "--register=no", "--keep-unit", "--console=passive",
             f"--machine={machine}", "-D", str(root), "-b"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        target = Target(root, port, identity, host_key, _init_pid(proc.pid, 30))
        # Wait for sshd, not for "running": on a busy host dbus can hang at start (inotify instances
        # exhausted), which keeps the boot "starting" although sshd and our units run fine.
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        state = ""
        while state != "active":
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd in the test target is {state!r} (see {log})")
            time.sleep(0.2)
            state = target.run("systemctl", "is-active", "ssh.service", timeout=30).stdout.strip()
        _wait_port(port, 30)
        yield target
    finally:
        proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
