"""The aarch64 test machine: a Debian Bookworm arm64 root booted whole under ``qemu-system-aarch64 -M virt``.

The pristine root (debootstrap ``--arch=arm64``, its second stage run by qemu-user through binfmt) with
Debian's arm64 kernel and initrd is built once per machine and cached in ``$KGATE_TEST_CACHE`` (default
``/var/cache/kgate-test``) under a version stamp, behind a file lock, like the nspawn root
(tests/provisioning/target.py). Every session copies it, writes its own sshd key material and the
register's loopback proxy into the copy, makes a raw ext4 disk of it (``mkfs.ext4 -d``) and boots that
with ``-kernel``/``-initrd`` (TCG: a whole emulated Cortex-A57, no KVM), user-mode networking with the
guest's sshd forwarded to 127.0.0.1:PORT on the host.

The register: a gate accepts plain http only to a loopback address, so inside the guest
``systemd-socket-proxyd`` listens on 127.0.0.1:REGISTER_PORT and forwards to 10.0.2.2:REGISTER_PORT,
which is qemu's user-mode alias for the host's 127.0.0.1: the register URL is the same loopback URL on
both sides, and no packet leaves the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ARCH = "arm64"
# The nspawn root's packages, plus a kernel (its initrd through initramfs-tools), udev for the
# block and network devices, and fsck for the root file system.
INCLUDE = (
    "systemd,systemd-sysv,dbus,udev,kmod,e2fsprogs,openssh-server,linux-image-arm64,"
    "python3,python3-venv,python3-pip,fonts-dejavu-core,libzbar0"
)
BUILD_VERSION = "1"
CACHE = Path(os.environ.get("KGATE_TEST_CACHE", "/var/cache/kgate-test"))
BUILD_TIMEOUT_S = 3600  # the second stage runs under qemu-user: far slower than the nspawn root's
BOOT_TIMEOUT_S = 900  # TCG on a busy 2-core host: the first boot measured about 2 minutes
IMAGE_SIZE = "6G"  # sparse: only what the root and the gate's venv hold is ever written
MEMORY_MB = 2048
QEMU = "qemu-system-aarch64"


def stamp() -> str:
    """The cache key: changes whenever what goes into the root changes."""
    key = f"{SUITE} {MIRROR} {ARCH} {INCLUDE} {BUILD_VERSION}"
    return f"{SUITE}-{ARCH}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def missing_tools() -> str | None:
    """Why the machine cannot be built or booted here, or None."""
    if os.environ.get("KGATE_AARCH64") != "1":
        return (
            "the aarch64 machine (qemu-system-aarch64, TCG) takes far longer than the suite's time "
            "budget; set KGATE_AARCH64=1 to run it (docs/provisioning.md, 'The aarch64 machine')"
        )
    if os.geteuid() != 0:
        return "the aarch64 machine needs root (debootstrap, chroot, mkfs.ext4 -d of a root-owned tree)"
    for tool in ("debootstrap", QEMU, "mkfs.ext4", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (provisioning/system-packages.sh aarch64 installs it)"
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        return (
            "qemu-aarch64 is not registered with binfmt_misc (qemu-user-static and binfmt-support; "
            "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable "
            "qemu-aarch64)"
        )
    return None


@dataclass(frozen=True)
class Pristine:
    root: Path
    kernel: Path
    initrd: Path


def _configure(root: Path) -> None:
    """What a bare OS on a board has beyond debootstrap: fstab, DHCP, a host name; no secrets."""
    (root / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (root / "etc" / "hostname").write_text("kgate-arm64\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n127.0.1.1 kgate-arm64\n")
    network = root / "etc" / "systemd" / "network" / "10-user.network"
    network.parent.mkdir(parents=True, exist_ok=True)
    network.write_text("[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n")
    subprocess.run(["chroot", str(root), "systemctl", "enable", "systemd-networkd.service"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True, timeout=300)
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()  # every copy gets its own host key
    (root / "etc" / "machine-id").write_text("")


def cached() -> Pristine:
    """The pristine arm64 root with its kernel and initrd, built once per machine under a lock."""
    CACHE.mkdir(parents=True, exist_ok=True)
    base = CACHE / stamp()
    pristine = Pristine(base / "root", base / "vmlinuz", base / "initrd.img")
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / ".kgate-test-complete").exists():
            return pristine
        tmp = Path(tempfile.mkdtemp(prefix=f"{stamp()}.tmp-", dir=CACHE))
        try:
            root = tmp / "root"
            subprocess.run(
                ["nice", "-n", "19", "debootstrap", f"--arch={ARCH}", "--variant=minbase",
                 f"--include={INCLUDE}", SUITE, str(root), MIRROR],
                check=True, stdout=subprocess.DEVNULL, timeout=BUILD_TIMEOUT_S,
            )  # fmt: skip
            _configure(root)
            [kernel] = (root / "boot").glob("vmlinuz-*")
            [initrd] = (root / "boot").glob("initrd.img-*")
            shutil.copy2(kernel, tmp / "vmlinuz")
            shutil.copy2(initrd, tmp / "initrd.img")
            (tmp / ".kgate-test-complete").write_text(stamp() + "\n")
            shutil.rmtree(base, ignore_errors=True)
            tmp.rename(base)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return pristine


@dataclass
class Machine:
    """A booted arm64 machine: the sshd port on 127.0.0.1, the client key, the pinned host key."""

    port: int
    identity: Path
    host_key_pub: str
    known_hosts: Path
    console: Path
    process: subprocess.Popen[bytes] | None = None  # qemu

    @property
    def host(self) -> str:
        return "root@127.0.0.1"

    def known_hosts_line(self) -> str:
        """What a technician's known_hosts holds for this machine (host key pinned, port included)."""
        return f"[127.0.0.1]:{self.port} {self.host_key_pub}\n"

    def ssh_argv(self, connect_timeout: int = 10) -> list[str]:
        return ["ssh", "-p", str(self.port), "-i", str(self.identity), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={connect_timeout}",
                "-o", "ServerAliveInterval=15", self.host]  # fmt: skip

    def run(
        self, *argv: str, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on the machine over SSH (as root)."""
        return subprocess.run(
            [*self.ssh_argv(), shlex.join(argv)],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


def prepare(root: Path, client_pub: str, register_port: int) -> str:
    """Write a session's sshd drop-in, root's authorized_keys, a host key and the register proxy into
    an unbooted copy of the root; return the host key's public line."""
    from tests.provisioning.target import _host_key

    root.chmod(0o755)
    conf = root / "etc" / "ssh" / "sshd_config.d" / "kgate-test.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUseDNS no\n"
    )
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(client_pub)
    (ssh_dir / "authorized_keys").chmod(0o600)
    units = root / "etc" / "systemd" / "system"
    (units / "kgate-register-proxy.socket").write_text(
        "[Unit]\nDescription=the test register on the host, as 127.0.0.1 here\n\n"
        f"[Socket]\nListenStream=127.0.0.1:{register_port}\n\n[Install]\nWantedBy=sockets.target\n"
    )
    (units / "kgate-register-proxy.service").write_text(
        "[Unit]\nDescription=the test register on the host, as 127.0.0.1 here\n\n"
        f"[Service]\nExecStart=/lib/systemd/systemd-socket-proxyd 10.0.2.2:{register_port}\n"
    )
    wants = units / "sockets.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "kgate-register-proxy.socket").symlink_to("/etc/systemd/system/kgate-register-proxy.socket")
    return _host_key(root)


def make_disk(pristine: Pristine, work: Path, client_pub: str, register_port: int) -> tuple[Path, str]:
    """A raw ext4 disk of a prepared copy of the root (the copy is removed again); its host key."""
    root = work / "root"
    subprocess.run(["cp", "--reflink=auto", "-a", str(pristine.root), str(root)], check=True, timeout=600)
    try:
        host_key = prepare(root, client_pub, register_port)
        disk = work / "disk.raw"
        subprocess.run(
            ["mkfs.ext4", "-q", "-L", "kgate-root", "-d", str(root), str(disk), IMAGE_SIZE],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return disk, host_key


def qemu_argv(pristine: Pristine, disk: Path, port: int, console: Path) -> list[str]:
    return ["nice", "-n", "19", QEMU, "-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", str(MEMORY_MB),
            "-kernel", str(pristine.kernel), "-initrd", str(pristine.initrd),
            "-append", "root=/dev/vda rw console=ttyAMA0 panic=-1",
            "-drive", f"file={disk},format=raw,if=none,id=root",
            "-device", "virtio-blk-pci,drive=root",
            "-netdev", f"user,id=n,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=n,romfile=",
            "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
            "-no-reboot"]  # fmt: skip


def wait_ssh(machine: Machine, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until a command runs over SSH (sshd up, key accepted); fail early if qemu died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"qemu exited with {proc.returncode} before sshd answered (see {machine.console})"
            )
        try:
            if machine.run("true", timeout=30).returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"sshd on the arm64 machine did not answer in {timeout:.0f} s (see {machine.console})"
            )
        time.sleep(1)  # between polls; each poll itself waits up to ConnectTimeout


def os_port() -> int:
    """A free loopback port chosen by the kernel (the ephemeral range: free_port()'s fixed blocks are
    shared with every other pytest run on the machine, and qemu cannot retry a taken port itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_qemu(pristine: Pristine, disk: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start qemu with sshd forwarded to a free loopback port; another port if that one was taken."""
    for _ in range(5):
        port = os_port()
        err = work / "qemu.err"
        with open(err, "wb") as out:
            proc = subprocess.Popen(
                qemu_argv(pristine, disk, port, work / "console.log"),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
        # qemu binds the forwarded port before the guest runs: the port is ours once it listens
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc, port
            time.sleep(0.2)
        if proc.poll() is None:
            return proc, port
        if "Could not set up host forwarding" not in err.read_text():
            raise RuntimeError(f"qemu exited with {proc.returncode}: {err.read_text().strip()}")
    raise RuntimeError(f"qemu could not forward a loopback port: {err.read_text().strip()}")


@contextlib.contextmanager
def booted(pristine: Pristine, work: Path, identity: Path, register_port: int) -> Iterator[Machine]:
    """Boot a fresh disk of the pristine root; yield once root logs in over SSH; power off after."""
    disk, host_key = make_disk(pristine, work, identity.with_suffix(".pub").read_text(), register_port)
    proc, port = start_qemu(pristine, disk, work)
    known_hosts = work / "known_hosts"
    machine = Machine(port, identity, host_key, known_hosts, work / "console.log", proc)
    known_hosts.write_text(machine.known_hosts_line())
    try:
        wait_ssh(machine, proc, BOOT_TIMEOUT_S)
        yield machine
    finally:
        power_off(machine, proc)


def power_off(machine: Machine, proc: subprocess.Popen[bytes], timeout: float = 300) -> int | None:
    """``systemctl poweroff`` in the guest and wait for qemu to exit; kill it only if it does not."""
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            machine.run("systemctl", "poweroff", timeout=60)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            return None
    return proc.returncode
